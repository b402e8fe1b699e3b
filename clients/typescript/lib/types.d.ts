/**
 * Request and response types of the ModelHub HTTP API, per task. A test checks them against the
 * hub's /openapi.json (field names, optionality, value types), so they cannot drift silently.
 */
/** The five tasks of the hub. */
export type Task = 'image-classification' | 'object-detection' | 'semantic-segmentation' | 'instance-segmentation' | 'text-vectors';
/** Base64 of an image file (PNG, JPEG, WebP, GIF, TIFF…); a `data:…;base64,` prefix is accepted. */
export type Base64Image = string;
/** How masks and maps are encoded: the spec's nested arrays, COCO uncompressed RLE, or PNG. */
export type MaskEncoding = 'array' | 'rle' | 'png';
export interface ImageClassificationInput {
    image: Base64Image;
}
export interface ObjectDetectionInput {
    image: Base64Image;
    /** 0..1; the model's default when absent. */
    score_threshold?: number;
    /** 1..1000, default 100. */
    max_detections?: number;
}
export interface SemanticSegmentationInput {
    image: Base64Image;
    encoding?: MaskEncoding;
    /** true: `probs` is [num_classes][H][W] instead of the predicted class's probability. */
    per_class_probs?: boolean;
}
export interface InstanceSegmentationInput {
    image: Base64Image;
    score_threshold?: number;
    max_detections?: number;
    mask_encoding?: MaskEncoding;
}
export interface TextVectorsInput {
    first_sequence: string;
    /** Empty or absent: one sentence; otherwise a sentence pair. */
    second_sequence?: string;
    /** 1..512 tokens, default 128. */
    sequence_length?: number;
    /** Comma-separated: pool_output, first_token_output, all_hidden_outputs (default pool_output). */
    output_schema?: string;
    /** "string" (the spec's comma-separated numbers, default) or "array" (JSON numbers). */
    format?: 'string' | 'array';
}
/** Fields every successful spec output carries. */
export interface SpecSuccess {
    request_id: string;
    success: true;
    error_code: 0;
}
export interface ImageClassificationOutput extends SpecSuccess {
    class: number;
    class_name: string;
    class_probs: Record<string, number>;
}
/** [y1, x1, y2, x2]: top, left, bottom, right, in input-image pixels. */
export type Box = [number, number, number, number];
export interface ObjectDetectionOutput extends SpecSuccess {
    detection_boxes: Box[];
    detection_scores: number[];
    detection_classes: number[];
    detection_class_names: string[];
}
/** COCO uncompressed RLE: run lengths in column-major order, starting with a run of zeros. */
export interface RleMask {
    size: [number, number];
    counts: number[];
}
/** An 8-bit (masks, class ids) or 16-bit (probabilities, × scale) gray PNG, base64. */
export interface PngMap {
    format: 'png';
    size: [number, number];
    data: string;
    scale?: number;
}
export interface InstanceSegmentationOutput extends ObjectDetectionOutput {
    /** [N][H][W] booleans (array), or one RLE / PNG per detection. */
    detection_masks: boolean[][][] | RleMask[] | PngMap[];
}
export interface SemanticSegmentationOutput extends SpecSuccess {
    /** Class id per pixel [H][W]; a PNG of ids; or one RLE per class present. */
    preds: number[][] | PngMap | (RleMask & {
        class: number;
    })[];
    /** Probability per pixel [H][W] (or [C][H][W] with per_class_probs), or PNG planes. */
    probs: number[][] | number[][][] | PngMap | PngMap[];
}
export interface TextVectorsOutput extends SpecSuccess {
    /** H comma-separated numbers, or numbers with format "array". */
    pool_output?: string | number[];
    first_token_output?: string | number[];
    /** sequence_length positions separated by ";", or [positions][H] with format "array". */
    all_hidden_outputs?: string | number[][];
}
export interface TaskInputs {
    'image-classification': ImageClassificationInput;
    'object-detection': ObjectDetectionInput;
    'semantic-segmentation': SemanticSegmentationInput;
    'instance-segmentation': InstanceSegmentationInput;
    'text-vectors': TextVectorsInput;
}
export interface TaskOutputs {
    'image-classification': ImageClassificationOutput;
    'object-detection': ObjectDetectionOutput;
    'semantic-segmentation': SemanticSegmentationOutput;
    'instance-segmentation': InstanceSegmentationOutput;
    'text-vectors': TextVectorsOutput;
}
/**
 * The hub's seed models and their tasks. Augment it for your own models
 * (`declare module '@modelhub/client' { interface KnownModels { 'my-model': 'object-detection' } }`)
 * and their inputs and outputs are typed too; any other name is typed as "some task".
 */
export interface KnownModels {
    'text-direction': 'image-classification';
    mobilenetv2: 'image-classification';
    resnet50: 'image-classification';
    'text-detection': 'object-detection';
    'faster-rcnn': 'object-detection';
    yolov8: 'object-detection';
    'yolox-nano': 'object-detection';
    'text-segmentation': 'semantic-segmentation';
    deeplabv3: 'semantic-segmentation';
    'deeplabv3-mobilenetv2': 'semantic-segmentation';
    'text-instances': 'instance-segmentation';
    'mask-rcnn': 'instance-segmentation';
    'bert-base-chinese': 'text-vectors';
}
/** The output of some task. */
export type AnyOutput = TaskOutputs[Task];
export type ModelName = keyof KnownModels | (string & {});
export type TaskOf<M extends string> = M extends keyof KnownModels ? KnownModels[M] : Task;
export type InputOf<M extends string> = TaskInputs[TaskOf<M>];
export type OutputOf<M extends string> = TaskOutputs[TaskOf<M>];
/** A predict answer's metrics: how many predict calls shared the call's queue entry (1: it went alone). */
export interface PredictMetrics {
    entry_items: number;
}
/**
 * What `predict` resolves to: the task's output, with the answer's `metrics` (absent when the call
 * outlived the hub's own wait and its job was read instead).
 */
export type PredictAnswer<M extends string> = OutputOf<M> & {
    metrics?: PredictMetrics;
};
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';
/** A spec error as the API answers it. */
export interface SpecErrorBody {
    success: false;
    error_code: number;
    error_msg: string;
    request_id?: string;
}
export interface Job<O = AnyOutput> {
    id: string;
    model: string;
    status: JobStatus;
    created_at: string;
    started_at?: string;
    completed_at?: string;
    /** The spec output (succeeded) or the spec error (failed, canceled). */
    output?: O | SpecErrorBody;
    metrics?: {
        queue_ms: number;
        inference_ms: number;
        batch_size: number;
        /** sha256 of the weights file that answered. */
        weights_sha256?: string;
        /** verified: a digest the manifest records; unverified: real weights it does not; test: a stand-in. */
        weights?: 'verified' | 'unverified' | 'test';
    };
    webhook?: {
        attempts: number;
        last_status: string | null;
        delivered_at: string | null;
    };
    urls: {
        get: string;
        cancel: string;
    };
    /** The job's OpenTelemetry trace id (32 hex digits), when the hub traces: hand it to an operator. */
    trace_id?: string;
}
export interface SubmitOptions {
    /** 1 (highest) .. 10, default 5. */
    priority?: number;
    /** Deadline in seconds from submission; past it the job ends as failed. */
    timeoutS?: number;
    /** http(s) URL that receives signed job events (the hub needs WEBHOOK_SECRET). */
    webhook?: string;
    /** Events sent to the webhook; default both. */
    webhookEvents?: ('start' | 'completed')[];
    /** The same key and request return the same job, never a second one. */
    idempotencyKey?: string;
    /** Hold the answer up to this many seconds until the job finishes (Prefer: wait). */
    waitS?: number;
    signal?: AbortSignal;
}
/** The JSON body of POST /v1/models/{model}/jobs. */
export interface SubmitBody<I = TaskInputs[Task]> {
    input: I;
    priority?: number;
    timeout_s?: number;
    webhook?: string;
    webhook_events_filter?: ('start' | 'completed')[];
}
export type ModelStatus = 'ready' | 'no_workers' | 'unavailable';
/** An image file format the hub decodes. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';
export interface ModelSummary {
    name: string;
    task: Task;
    /** What the model's input is: an `image` field, or text fields. */
    modality: 'image' | 'text';
    /** The image file formats its `image` accepts (others answer 415, error_code 1007); empty for text. */
    image_formats: ImageFormat[];
    description: string;
    status: ModelStatus;
    /** real weights, a generated test stand-in, or missing. */
    weights: 'real' | 'test' | 'missing';
    /** The weights file this hub resolved for the model (absent: none). */
    weights_file?: string;
    /** That file's sha256. */
    weights_sha256?: string;
    /** verified: the manifest records this digest; unverified: real weights it does not record; test: a stand-in. */
    verification?: 'verified' | 'unverified' | 'test';
    /** For a test or unavailable model: the command (or the instructions) that gives it real weights. */
    make_real?: string;
    /** The weights file's licence, when its manifest says. */
    license?: string;
    /** Live workers serving it. */
    workers: number;
    /** Largest batch the live workers form (a model file with a fixed batch dimension caps the manifest's). */
    max_batch_size: number;
    /** The weights files the live workers loaded, one entry per distinct sha256. */
    loaded: {
        file: string;
        sha256: string;
        kind: 'real' | 'test';
        verification?: 'verified' | 'unverified' | 'test';
        workers: number;
    }[];
    /** Live workers serving this model loaded different files. */
    mixed_fleet: boolean;
    /** null when the queue could not be read. */
    queue: {
        waiting: number;
        active: number;
    } | null;
}
export interface ModelDetail extends ModelSummary {
    reference?: string;
    input: {
        schema: Record<string, unknown>;
    };
    output: {
        fields: Record<string, string>;
    };
    batching: Record<string, unknown>;
    num_labels: number;
    /** Class names by id (null for an id without a name); null for models without classes. */
    labels: (string | null)[] | null;
    example: string;
    [field: string]: unknown;
}
/** A live count and its limit (0: no limit). */
export interface Quota {
    used: number;
    limit: number;
}
/** GET /v1/usage: what a tenant holds against its quotas, per model, from the counters the 429s are decided on. */
/** A rate bucket: refill per second (0: no limit), capacity, and what can be spent now. */
export interface RateBucket {
    per_second: number;
    burst: number;
    available: number;
}
export interface Usage {
    /** null on an open hub (no API keys). */
    tenant: string | null;
    /** The tenant's request and body-byte rate buckets in the API process that answered (absent on an open hub). */
    rates?: {
        requests: RateBucket;
        bytes: RateBucket;
    };
    models: Record<string, {
        /** Jobs submitted and not yet started (TENANT_MAX_WAITING). */
        waiting: Quota;
        /** Inputs of jobs and batch items not yet finished plus kept results, bytes (TENANT_MAX_STORED_BYTES). */
        stored_bytes: Quota;
        /** Batches with items not yet finished. */
        batches_in_flight: number;
        /** Batch items staged and not yet finished (TENANT_MAX_BATCH_ITEMS). */
        batch_items: Quota;
        /** The part of stored_bytes that is batch items' inputs. */
        batch_stored_bytes: number;
    }>;
}
export interface WorkerInfo {
    id: string;
    device: string;
    models: string[];
    pid: number;
    host: string;
    version: string;
    started_at: string;
    heartbeat_at: number;
    heartbeat_ms: number;
    batching: Record<string, {
        max_batch_size: number;
        max_queue_delay_ms: number;
    }>;
    /** Per model: the weights file loaded. */
    weights?: Record<string, {
        file: string;
        sha256: string;
        kind: 'real' | 'test';
    }>;
    load: Record<string, number>;
}
export type BatchStatus = 'queued' | 'running' | 'completed' | 'canceled';
/** A batch (POST /v1/models/{model}/batches): status, item counts, timestamps. */
export interface Batch {
    id: string;
    object: 'batch';
    model: string;
    status: BatchStatus;
    counts: {
        total: number;
        queued: number;
        running: number;
        succeeded: number;
        failed: number;
        canceled: number;
    };
    created_at: string;
    started_at?: string;
    completed_at?: string;
    canceled_at?: string;
    urls: {
        get: string;
        results: string;
        cancel: string;
    };
}
/** One line of a batch's results. */
export interface BatchResultLine<O = AnyOutput> {
    index: number;
    status: 'succeeded' | 'failed' | 'canceled';
    output?: O & {
        request_id: string;
        success: true;
        error_code: 0;
    };
    error?: SpecErrorBody;
    completed_at: string;
}
export interface BatchOptions {
    /** 1 (first) .. 10 among batches, default 5; every batch ranks below every interactive job. */
    priority?: number;
    /** Deadline in seconds from submission; items not started by then fail. */
    timeoutS?: number;
    /** http(s) URL that receives one signed batch.completed event. */
    webhook?: string;
    /** The same key and inputs return the same batch, never a second one. */
    idempotencyKey?: string;
    signal?: AbortSignal;
}
