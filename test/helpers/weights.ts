/**
 * The real-weights fixtures at ../shared/weights (outside the repository; never copied into it):
 * tests that need them skip with this message when the folder is absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../shared/config.js';

const dir = path.resolve(REPO_ROOT, '..', 'shared', 'weights');

/** The fixtures folder, or null when this checkout has none. */
export const FIXTURE_WEIGHTS_DIR: string | null = fs.existsSync(path.join(dir, 'mobilenetv2-12-int8.onnx'))
  ? dir
  : null;

export const NO_FIXTURES_MESSAGE = `real-weights tests skipped: ${dir} is absent (it holds mobilenetv2-12-int8.onnx, yolov8n-int8-640.onnx, yolov8n-seg-int8-320.onnx and images/; see README "Models")`;

export function fixtureImage(name: 'chelsea' | 'astronaut'): string {
  return fs.readFileSync(path.join(dir, 'images', `${name}.png`)).toString('base64');
}
