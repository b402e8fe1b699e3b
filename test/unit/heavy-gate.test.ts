/**
 * Very large images take turns in a worker (one gate for all its models), while small jobs go
 * straight through: a few 9-megapixel segmentations cannot take every core from other tenants.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { AdmissionGate } from '../../worker/admission-gate.js';
import { imagePixelsOf } from '../../worker/image-weight.js';
import { ItemIntake } from '../../worker/item-intake.js';
import type { ModelRunner, RunResult } from '../../worker/model-runner.js';

/** A runner whose runs end when the test says; it records which inputs are inside at once. */
function fakeRunner() {
  const inside = new Set<string>();
  const release = new Map<string, () => void>();
  let mostHeavyInside = 0;
  const runner = {
    run(input: Record<string, unknown>): Promise<RunResult> {
      const name = input.name as string;
      inside.add(name);
      mostHeavyInside = Math.max(mostHeavyInside, [...inside].filter((n) => n.startsWith('heavy')).length);
      return new Promise((resolve) =>
        release.set(name, () => {
          inside.delete(name);
          resolve({ output: { name }, preprocessMs: 0, inferenceMs: 0, batchSize: 1 });
        }),
      );
    },
  };
  return { runner: runner as unknown as ModelRunner, inside, release, mostHeavyInside: () => mostHeavyInside };
}

const tick = () => new Promise((r) => setTimeout(r, 10));
const image = async (w: number, h: number) =>
  (
    await sharp({ create: { width: w, height: h, channels: 3, background: '#123456' } })
      .png()
      .toBuffer()
  ).toString('base64');

describe('the heavy-image gate', () => {
  it("reads an image's pixels from its header, for every allowed format", async () => {
    for (const format of ['png', 'jpeg', 'webp', 'gif', 'tiff'] as const) {
      const b64 = (
        await sharp({ create: { width: 300, height: 200, channels: 3, background: '#000' } })
          .toFormat(format)
          .toBuffer()
      ).toString('base64');
      expect(imagePixelsOf({ image: b64 })).toBe(60_000);
    }
    expect(imagePixelsOf({ text: 'no image' })).toBeNull();
    expect(imagePixelsOf({ image: 'bm90IGFuIGltYWdl' })).toBeNull();
  });

  it('lets one large image in at a time, across models, while small ones go straight in', async () => {
    const big = await image(200, 200);
    const small = await image(10, 10);
    const gate = new AdmissionGate(1);
    const a = fakeRunner();
    const b = fakeRunner();
    const intakeA = new ItemIntake(a.runner, { bulkInFlight: 8, heavy: { gate, minPixels: 1000 } });
    const intakeB = new ItemIntake(b.runner, { bulkInFlight: 8, heavy: { gate, minPixels: 1000 } });
    const done = [
      intakeA.runOne({ name: 'heavy-1', image: big }),
      intakeA.runOne({ name: 'heavy-2', image: big }),
      intakeB.run([{ name: 'heavy-3', image: big }], 'bulk'),
      intakeA.runOne({ name: 'small-1', image: small }),
      intakeB.runOne({ name: 'small-2', image: small }),
    ];
    await tick();
    // The small jobs are not behind the large ones; one large one is in.
    expect([...a.inside].sort()).toEqual(['heavy-1', 'small-1']);
    expect([...b.inside]).toEqual(['small-2']);
    a.release.get('small-1')!();
    b.release.get('small-2')!();
    a.release.get('heavy-1')!();
    await tick();
    expect([...a.inside]).toEqual(['heavy-2']);
    expect(b.inside.size).toBe(0);
    a.release.get('heavy-2')!();
    await tick();
    expect([...b.inside]).toEqual(['heavy-3']);
    b.release.get('heavy-3')!();
    await Promise.all(done);
    expect(Math.max(a.mostHeavyInside(), b.mostHeavyInside())).toBe(1);
    expect(gate.inside).toBe(0);
  });

  it('without the gate every large image is in at once (what the gate prevents)', async () => {
    const big = await image(200, 200);
    const a = fakeRunner();
    const intake = new ItemIntake(a.runner, { bulkInFlight: 8 });
    const done = [1, 2, 3].map((i) => intake.runOne({ name: `heavy-${i}`, image: big }));
    await tick();
    expect(a.inside.size).toBe(3);
    for (const release of a.release.values()) release();
    await Promise.all(done);
  });
});
