/**
 * The spec's tasks, as both processes see them: input schema (what the API validates), the
 * tensor roles a manifest must name, and the output fields (for the catalog's documentation).
 * The compute side of each task (preprocess → forward → postprocess) lives in worker/tasks/.
 */
import { z } from 'zod';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:[\w.+/-]+;base64,/;

/** The base64 text of an image field without a `data:...;base64,` prefix and line breaks. */
export const stripBase64Image = (s: string): string => s.replace(DATA_URL, '').replace(/\s+/g, '');
export const isBase64 = (s: string): boolean => BASE64.test(s) && s.length % 4 !== 1;

/** A base64 image file; a `data:...;base64,` prefix and line breaks are tolerated. */
export const Base64Image = z
  .string({ error: 'image must be a base64 string' })
  .min(1, 'image must not be empty')
  .transform(stripBase64Image)
  .refine(isBase64, 'image is not valid base64');

const ImageInput = z.strictObject({ image: Base64Image });

/** Request options of the vision tasks (not in the spec; every one is optional). */
const ScoreThreshold = z
  .number({ error: 'score_threshold must be a number' })
  .min(0, 'score_threshold must be between 0 and 1')
  .max(1, 'score_threshold must be between 0 and 1')
  .optional();
const MaxDetections = z
  .number({ error: 'max_detections must be an integer' })
  .int('max_detections must be an integer')
  .min(1, 'max_detections must be at least 1')
  .max(1000, 'max_detections must be at most 1000')
  .optional();
/** array: the spec's nested arrays; rle: COCO uncompressed RLE (column-major); png: base64 PNG. */
export const MASK_ENCODINGS = ['array', 'rle', 'png'] as const;
const MaskEncoding = (field: string) =>
  z.enum(MASK_ENCODINGS, { error: `${field} must be one of ${MASK_ENCODINGS.join(', ')}` }).default('array');

const DetectionInput = z.strictObject({
  image: Base64Image,
  score_threshold: ScoreThreshold,
  max_detections: MaxDetections,
});

const SemanticSegmentationInput = z.strictObject({
  image: Base64Image,
  encoding: MaskEncoding('encoding'),
  /** The spec's example form: probs as [num_classes, H, W] instead of the predicted class's probability. */
  per_class_probs: z.boolean({ error: 'per_class_probs must be a boolean' }).default(false),
});

const InstanceSegmentationInput = z.strictObject({
  image: Base64Image,
  score_threshold: ScoreThreshold,
  max_detections: MaxDetections,
  mask_encoding: MaskEncoding('mask_encoding'),
});

const DETECTION_FIELDS = {
  detection_boxes: 'FLOAT [num_detections, 4]: [y1, x1, y2, x2] (top, left, bottom, right) in input-image pixels',
  detection_scores: 'FLOAT [num_detections]: probability of each detection',
  detection_classes: 'INT [num_detections]: class id of each detection',
  detection_class_names: 'STRING [num_detections]: class name of each detection',
};

export const OUTPUT_SCHEMA_FIELDS = ['pool_output', 'first_token_output', 'all_hidden_outputs'] as const;
export type OutputSchemaField = (typeof OUTPUT_SCHEMA_FIELDS)[number];

/** Spec §2: sequence_length is a truncation length of at most 512 tokens. */
export const MAX_SEQUENCE_LENGTH = 512;
/**
 * Longest text accepted per sequence, in characters. Not in the spec: the answer only ever uses
 * the first 512 tokens, and tokenizing megabytes of text would hold a worker for nothing.
 */
export const MAX_TEXT_CHARS = 100_000;

const Text = (field: string) =>
  z
    .string({ error: `${field} must be a string` })
    .max(MAX_TEXT_CHARS, `${field} is longer than ${MAX_TEXT_CHARS} characters`);

/** "pool_output,first_token_output" → ['pool_output', 'first_token_output']; an unknown or empty entry is an error. */
export const OutputSchema = z.string({ error: 'output_schema must be a string' }).transform((s, ctx) => {
  const parts = s.split(',').map((p) => p.trim());
  for (const p of parts) {
    if (p === '') {
      ctx.addIssue({
        code: 'custom',
        message: `output_schema has an empty entry (expected a comma-separated list of ${OUTPUT_SCHEMA_FIELDS.join(', ')})`,
      });
      return z.NEVER;
    }
    if (!(OUTPUT_SCHEMA_FIELDS as readonly string[]).includes(p)) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown output_schema entry "${p}" (expected ${OUTPUT_SCHEMA_FIELDS.join(', ')})`,
      });
      return z.NEVER;
    }
  }
  return [...new Set(parts)] as OutputSchemaField[];
});

export const TextVectorsInput = z.strictObject({
  first_sequence: Text('first_sequence').min(1, 'first_sequence must not be empty'),
  /** Empty: a single sentence; otherwise a sentence pair (token type ids 0 then 1). */
  second_sequence: Text('second_sequence').default(''),
  sequence_length: z
    .number({ error: 'sequence_length must be an integer' })
    .int('sequence_length must be an integer')
    .min(1, 'sequence_length must be at least 1')
    .max(MAX_SEQUENCE_LENGTH, `sequence_length must be at most ${MAX_SEQUENCE_LENGTH}`)
    .default(128),
  output_schema: OutputSchema.prefault('pool_output'),
  /** Not in the spec: "array" answers JSON number arrays instead of the spec's strings. */
  format: z.enum(['string', 'array']).default('string'),
});

export interface TaskInfo {
  modality: 'image' | 'text';
  /** Tensor roles a manifest must map to tensor names. */
  inputRoles: readonly string[];
  outputRoles: readonly string[];
  input: z.ZodType;
  /** Output fields, documented in the catalog. */
  outputFields: Record<string, string>;
}

export const TASKS = {
  'image-classification': {
    modality: 'image',
    inputRoles: ['image'],
    outputRoles: ['scores'],
    input: ImageInput,
    outputFields: {
      class: 'INT32: id of the top class',
      class_name: 'STRING: name of the top class',
      class_probs: 'Dict[STRING, FLOAT]: probability of every class, keyed by class name',
    },
  },
  'text-vectors': {
    modality: 'text',
    inputRoles: ['input_ids', 'attention_mask', 'token_type_ids'],
    outputRoles: ['last_hidden_state', 'pooler_output'],
    input: TextVectorsInput,
    outputFields: {
      pool_output: 'STRING: H comma-separated numbers (pooler: dense + tanh over CLS)',
      first_token_output: 'STRING: H comma-separated numbers (CLS final hidden state)',
      all_hidden_outputs: 'STRING: sequence_length positions separated by ";", each H comma-separated numbers',
    },
  },
  'object-detection': {
    modality: 'image',
    inputRoles: ['image'],
    // Role sets differ per export family (DBNet map, R-CNN boxes/labels/scores, YOLO grid):
    // the decoder named in the manifest's postprocess section checks its own roles.
    outputRoles: [],
    input: DetectionInput,
    outputFields: DETECTION_FIELDS,
  },
  'semantic-segmentation': {
    modality: 'image',
    inputRoles: ['image'],
    outputRoles: [],
    input: SemanticSegmentationInput,
    outputFields: {
      probs:
        'FLOAT [image_height, image_width]: probability of the predicted class per pixel ([num_classes, H, W] with per_class_probs)',
      preds: 'INT [image_height, image_width]: class id per pixel',
    },
  },
  'instance-segmentation': {
    modality: 'image',
    inputRoles: ['image'],
    outputRoles: [],
    input: InstanceSegmentationInput,
    outputFields: {
      ...DETECTION_FIELDS,
      detection_masks:
        'BOOL [num_detections, image_height, image_width]: mask of each detection (or RLE / PNG per mask_encoding)',
    },
  },
} as const satisfies Record<string, TaskInfo>;

export type TaskName = keyof typeof TASKS;
export type ImageInputT = z.infer<typeof ImageInput>;
export type DetectionInputT = z.infer<typeof DetectionInput>;
export type SemanticSegmentationInputT = z.infer<typeof SemanticSegmentationInput>;
export type InstanceSegmentationInputT = z.infer<typeof InstanceSegmentationInput>;
export type MaskEncoding = (typeof MASK_ENCODINGS)[number];
export type TextVectorsInputT = z.infer<typeof TextVectorsInput>;
