/** Spec §1.1 image classification: image → scores → { class, class_name, class_probs }. */
import { z } from 'zod';
import { labelOf, type ModelEntry } from '../../shared/manifest.js';
import { asNumbers, itemOutput } from './outputs.js';
import { defineTask } from './task.js';
import { visionInput } from './vision-input.js';

const PostprocessSchema = z.object({
  /** What the score output holds: logits (softmax applied here) or probabilities already. */
  activation: z.enum(['softmax', 'sigmoid', 'none']).default('softmax'),
});

export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/**
 * class_probs is keyed by class name, but some label sets repeat a name (ImageNet has two
 * "crane"s): each repeated name gets its class id appended, "crane [134]", so no probability is lost.
 */
export function classProbKeys(entry: Pick<ModelEntry, 'labels'>, numClasses: number): string[] {
  const names = Array.from({ length: numClasses }, (_, i) => labelOf(entry.labels, i));
  const seen = new Map<string, number>();
  for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1);
  return names.map((n, i) => ((seen.get(n) ?? 0) > 1 ? `${n} [${i}]` : n));
}

export const imageClassification = defineTask((ctx) => {
  const { entry } = ctx;
  const post = PostprocessSchema.parse(entry.manifest.postprocess);
  const outputName = entry.manifest.outputs.scores;
  let keys: string[] | null = null;
  // The spec input has no options besides the image.
  const input = visionInput(ctx, z.strictObject({}));

  return {
    preprocess: input.preprocess,
    collate: input.collate,
    freshFeeds: input.freshFeeds,
    batchCost: input.batchCost,
    maxBatchCost: input.maxBatchCost,
    postprocess(outputs, index) {
      const row = asNumbers(itemOutput(outputs, outputName, index, input.batched).data);
      const probs =
        post.activation === 'softmax'
          ? softmax(row)
          : Float64Array.from(row, (v) => (post.activation === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : v));
      keys ??= classProbKeys(entry, probs.length);
      let best = 0;
      for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
      const classProbs: Record<string, number> = {};
      probs.forEach((p, i) => {
        classProbs[keys![i]] = p;
      });
      return { class: best, class_name: labelOf(entry.labels, best), class_probs: classProbs };
    },
  };
});
