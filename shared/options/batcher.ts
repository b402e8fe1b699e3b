/**
 * How a worker feeds each model's batcher (worker/item-intake.ts): how many bulk items it lets in
 * at once, and the gate very large images take turns through. Its variables (part of the
 * configuration schema, shared/config.ts), the options type the intake takes, and its resolution
 * from a loaded configuration, done once by the worker's entry point (shared/options/worker.ts).
 * A new batcher setting: its variable in BATCHER_SETTINGS, its field (documented, with its
 * default) in BatcherOptions and its line in batcherOptions, all here; then the code that uses it.
 */
import os from 'node:os';
import type { Config } from '../config.js';
import { int } from '../settings.js';

/** The batcher's variables (each read as MODELHUB_<name>; shared/config.ts envName). */
export const BATCHER_SETTINGS = {
  /** Bulk items one worker keeps in its model's batcher at once; 0 = 2 × max_batch_size. Interactive jobs are never held back. */
  BATCH_ITEMS_IN_FLIGHT: int(0),
  /**
   * Worker: images over HEAVY_IMAGE_PIXELS (by their header) being worked on at once in one
   * worker, all models together; the rest wait their turn, so a few very large images cannot take
   * every core from other jobs. HEAVY_ITEMS_IN_FLIGHT 0 = half the cores (at least 1);
   * HEAVY_IMAGE_PIXELS 0 = no gate.
   */
  HEAVY_ITEMS_IN_FLIGHT: int(0),
  HEAVY_IMAGE_PIXELS: int(4_000_000),
};

/** What a worker's item intakes take: one per model, the heavy-image gate shared by all of them. */
export interface BatcherOptions {
  /**
   * Bulk (batch) items inside one model's runner at once (preprocessing, batcher, session); 0:
   * twice the model's max_batch_size. Interactive jobs are never held back: one waits behind at
   * most this many bulk items.
   * @defaultValue 0 (MODELHUB_BATCH_ITEMS_IN_FLIGHT)
   */
  bulkItemsInFlight: number;
  /**
   * Images over `heavyImagePixels` being worked on at once in the worker, all models together.
   * @defaultValue half the cores, at least 1 (MODELHUB_HEAVY_ITEMS_IN_FLIGHT=0)
   */
  heavyItemsInFlight: number;
  /**
   * Pixels (by the image's header) past which an image is heavy and takes turns; 0: no gate.
   * @defaultValue 4000000 (MODELHUB_HEAVY_IMAGE_PIXELS)
   */
  heavyImagePixels: number;
}

export function batcherOptions(config: Config): BatcherOptions {
  return {
    bulkItemsInFlight: config.BATCH_ITEMS_IN_FLIGHT,
    heavyItemsInFlight: config.HEAVY_ITEMS_IN_FLIGHT || Math.max(1, Math.floor(os.availableParallelism() / 2)),
    heavyImagePixels: config.HEAVY_IMAGE_PIXELS,
  };
}
