/**
 * Each task's answer (docs/models.md, with the encodings and formats docs/models-*.md add), as
 * zod schemas: the OpenAPI document describes every model's answer with them, and the traffic
 * test holds real answers to them. The fields are those TASKS[task].outputFields documents.
 */
import { z } from 'zod';
import type { TaskName } from './tasks.js';

/** Fields every successful answer carries. */
const Success = {
  request_id: z.string().describe('The job id'),
  success: z.literal(true),
  error_code: z.literal(0),
};

const Int = z.number().int();
/**
 * A fixed-length list of numbers. Not z.tuple: its JSON Schema (prefixItems, items: false) is
 * draft 2020-12 only, and validators reading it as draft 7 refuse every item.
 */
const Numbers = (length: number, item: z.ZodNumber = z.number()) => z.array(item).length(length);

/** COCO uncompressed RLE of an [H, W] mask: run lengths in column-major order, zeros first. */
export const RleMaskSchema = z.object({ size: Numbers(2, Int).describe('[height, width]'), counts: z.array(Int) });

/** An 8-bit (masks, class ids) or 16-bit (probabilities; value × scale) gray PNG, base64. */
export const PngMapSchema = z.object({
  format: z.literal('png'),
  size: Numbers(2, Int).describe('[height, width]'),
  scale: z.number().optional().describe('Multiply a 16-bit sample by it to read the probability'),
  data: z.string().describe('Base64 of the PNG file'),
});

const Rows = <T extends z.ZodType>(value: T) => z.array(z.array(value));

const DetectionFields = {
  detection_boxes: z.array(Numbers(4)).describe('[y1, x1, y2, x2] (top, left, bottom, right) in input-image pixels'),
  detection_scores: z.array(z.number()),
  detection_classes: z.array(Int),
  detection_class_names: z.array(z.string()),
};

const Vector = z.union([z.string(), z.array(z.number())]);

export const TASK_OUTPUTS = {
  'image-classification': z.object({
    ...Success,
    class: Int.describe('Id of the top class'),
    class_name: z.string(),
    class_probs: z.record(z.string(), z.number()).describe('Probability of every class, keyed by class name'),
  }),
  'object-detection': z.object({ ...Success, ...DetectionFields }),
  'semantic-segmentation': z.object({
    ...Success,
    probs: z
      .union([Rows(z.number()), z.array(Rows(z.number())), PngMapSchema, z.array(PngMapSchema)])
      .describe('[H][W] (or [C][H][W] with per_class_probs) as arrays, or PNG planes'),
    preds: z
      .union([Rows(Int), PngMapSchema, z.array(RleMaskSchema.extend({ class: Int }))])
      .describe('Class id per pixel: [H][W], a PNG of ids, or one RLE per class present'),
  }),
  'instance-segmentation': z.object({
    ...Success,
    ...DetectionFields,
    detection_masks: z
      .union([z.array(Rows(z.boolean())), z.array(RleMaskSchema), z.array(PngMapSchema)])
      .describe('[N][H][W] booleans, or one RLE or PNG per detection (mask_encoding)'),
  }),
  'text-vectors': z.object({
    ...Success,
    pool_output: Vector.optional(),
    first_token_output: Vector.optional(),
    all_hidden_outputs: z.union([z.string(), z.array(z.array(z.number()))]).optional(),
  }),
} as const satisfies Record<TaskName, z.ZodType>;
