import type { ModelHub } from './client.js';
import type { Batch } from './types.js';
export declare const BATCH_USAGE = "  batch submit <model> <inputs.jsonl | image-file\u2026> [-p k=v]\u2026 [--priority 1-10] [--timeout S]\n          [--webhook URL] [--idempotency-key K] [--wait]\n  batch   <id> [--wait]                   a batch's status and item counts\n  batch results <id> [--order input]      its finished items (JSONL with --json)\n  batch cancel <id>                       cancel the items not yet started";
export interface BatchFlags {
    json: boolean;
    wait: boolean;
    priority?: number;
    timeoutS?: number;
    webhook?: string;
    idempotencyKey?: string;
    order?: string;
    params: Record<string, unknown>;
    waitTimeoutS?: number;
}
/** A usage mistake in `batch …` (exit 2, as the CLI's other usage errors). */
export declare class BatchUsageError extends Error {
}
/** --wait passed --wait-timeout before the batch finished (exit 4); the batch continues on the hub. */
export declare class BatchWaitTimeoutError extends Error {
    readonly batch: Batch;
    name: string;
    constructor(batch: Batch);
}
export declare function batchTable(b: Batch): string;
/** Runs `batch …`; returns the exit status. */
export declare function runBatch(hub: ModelHub, args: string[], flags: BatchFlags): Promise<number>;
