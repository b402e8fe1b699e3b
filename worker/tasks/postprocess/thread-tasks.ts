/**
 * What the worker's postprocessing threads run (OffloopPool tasks, see offloop.ts): the same
 * functions the event loop would, so an answer is byte for byte the same either way.
 */
import type { MaskEncoding } from '../../../shared/tasks.js';
import { moving } from '../../../shared/offloop/pool.js';
import type { SegmentationMaps } from '../decoders/family.js';
import { dbnetDetections, type DbnetParams } from '../decoders/dbnet.js';
import { segmentLogits } from '../decoders/torchvision-seg.js';
import type { Geometry } from '../geometry.js';
import { encodeMasks } from './mask-encoding.js';
import { encodeSegmentation } from './segmentation-encoding.js';

export function segmentLogitsTask(a: {
  logits: Float32Array | Float64Array;
  numClasses: number;
  mapW: number;
  mapH: number;
  geometry: Geometry;
  perClass: boolean;
  encoding: MaskEncoding;
}) {
  return encodeSegmentation(segmentLogits(a.logits, a.numClasses, a.mapW, a.mapH, a.geometry, a.perClass), a.encoding);
}

export function encodeSegmentationTask(a: { maps: SegmentationMaps; encoding: MaskEncoding }) {
  return encodeSegmentation(a.maps, a.encoding);
}

export function encodeMasksTask(a: { masks: Uint8Array[]; width: number; height: number; encoding: MaskEncoding }) {
  return encodeMasks(a.masks, a.width, a.height, a.encoding);
}

/** DBNet's regions of one item's probability map (a page's: hundreds of thousands of cells). */
export function dbnetDetectTask(a: {
  map: Float32Array | Float64Array;
  width: number;
  height: number;
  geometry: Geometry;
  params: DbnetParams;
}) {
  const found = dbnetDetections(a.map, a.width, a.height, a.geometry, a.params);
  // The map goes back to the event loop, which reuses its buffer for the next page's map.
  return moving({ found, geometry: a.geometry, map: a.map }, [a.map.buffer as ArrayBuffer]);
}
