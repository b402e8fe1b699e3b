/**
 * Task name → pipeline factory. Adding a task: one file here and one entry in shared/tasks.ts.
 * Image tasks take their model-specific decoding from the model's family (./decoders/).
 */
import type { TaskName } from '../../shared/tasks.js';
import { imageClassification } from './image-classification.js';
import { instanceSegmentation } from './instance-segmentation.js';
import { objectDetection } from './object-detection.js';
import { semanticSegmentation } from './semantic-segmentation.js';
import type { TaskFactory } from './task.js';
import { textVectors } from './text-vectors.js';

export const TASK_PIPELINES: Partial<Record<TaskName, TaskFactory>> = {
  'image-classification': imageClassification,
  'object-detection': objectDetection,
  'semantic-segmentation': semanticSegmentation,
  'instance-segmentation': instanceSegmentation,
  'text-vectors': textVectors,
};
