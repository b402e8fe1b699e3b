/**
 * How long one large input holds an event loop, with the heavy step on the loop against in an
 * offload thread, side by side in one process (`npx tsx bench/offloop.ts`):
 *   parse   a ~25 MB job body (a real ~19 MB PNG as base64) through the API's body parser and
 *           input validation (scan, JSON.parse, base64 check and decode, header read);
 *   segment a 3000×3000 semantic segmentation's postprocessing (resampling, softmax, argmax,
 *           PNG-encoded maps) through the deeplabv3 task's postprocess.
 * For each, the largest event-loop delay (perf_hooks.monitorEventLoopDelay) while the step runs,
 * median over --runs, and the ratio offloaded / inline. Absolute figures move with the machine's
 * load; read the ratio.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { benchParse } from './lib/offloop-parse.js';
import { benchSegment } from './lib/offloop-segment.js';

const { values: opts } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, only: { type: 'string', default: 'parse,segment' } },
});
const runs = Number(opts.runs);

/** Largest event-loop delay while `step` runs, ms. */
export async function maxDelayDuring(step: () => Promise<unknown>): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  // The histogram records the gap between two of its ticks: let it tick before the step starts.
  await new Promise((r) => setTimeout(r, 20));
  await step();
  await new Promise((r) => setTimeout(r, 20));
  h.disable();
  return h.max / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Step {
  name: string;
  inline: () => Promise<unknown>;
  offloop: () => Promise<unknown>;
  close: () => Promise<unknown>;
}

const result: Record<string, unknown> = {};
const steps: Step[] = [];
if (opts.only.includes('parse')) steps.push(await benchParse());
if (opts.only.includes('segment')) steps.push(await benchSegment());

for (const step of steps) {
  await step.inline();
  await step.offloop(); // warm: thread started, code loaded
  const inline: number[] = [];
  const offloop: number[] = [];
  // Interleaved, so a change in the machine's load hits both alike.
  for (let i = 0; i < runs; i++) {
    inline.push(await maxDelayDuring(step.inline));
    offloop.push(await maxDelayDuring(step.offloop));
  }
  await step.close();
  const r = {
    inline_max_delay_ms: median(inline),
    offloop_max_delay_ms: median(offloop),
    ratio: median(offloop) / median(inline),
  };
  result[step.name] = r;
  console.log(
    `${step.name}: event-loop max delay inline ${r.inline_max_delay_ms.toFixed(1)} ms, off the loop ${r.offloop_max_delay_ms.toFixed(1)} ms (${r.ratio.toFixed(3)}×), median of ${runs}`,
  );
}
console.log(JSON.stringify(result));
