/** Human-readable renderings for the CLI: tables, and a short summary of each task's output. */
import type { Job, ModelSummary } from './types.js';
/** Left-aligned columns; numbers right-aligned. */
export declare function table(header: string[], rows: (string | number)[][]): string;
export declare function modelsTable(models: ModelSummary[]): string;
export declare function jobTable(job: Job<unknown>): string;
/** A few lines that say what a spec output holds; falls back to key names for unknown shapes. */
export declare function outputSummary(output: Record<string, unknown>): string;
