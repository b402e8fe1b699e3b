/** Human-readable renderings for the CLI: tables, and a short summary of each task's output. */
import type { Job, ModelSummary, Usage } from './types.js';
/** Left-aligned columns; numbers right-aligned. */
export declare function table(header: string[], rows: (string | number)[][]): string;
export declare function modelsTable(models: ModelSummary[]): string;
/** A tenant's usage: one row per model where it holds anything, then the limits. */
export declare function usageTable(usage: Usage): string;
export declare function jobTable(job: Job<unknown>): string;
/** A few lines that say what a spec output holds; falls back to key names for unknown shapes. */
export declare function outputSummary(output: Record<string, unknown>): string;
