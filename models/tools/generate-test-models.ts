/**
 * Writes every generated test model into MODELHUB_GENERATED_DIR (default models/.generated).
 * Idempotent: a model already written with the same bytes is left alone.
 *   npm run models:generate
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../shared/config.js';
import { buildClassifierTestModel } from './classification-test-model.js';
import { buildDeeplabTestModel } from './deeplab-test-model.js';
import { buildFasterRcnnTestModel, buildMaskRcnnTestModel } from './rcnn-test-model.js';
import { buildYoloTestModel } from './yolo-test-model.js';

export const GENERATORS: Record<string, () => Uint8Array> = {
  'resnet50-test': buildClassifierTestModel,
  'faster-rcnn-test': buildFasterRcnnTestModel,
  'mask-rcnn-test': buildMaskRcnnTestModel,
  'deeplabv3-test': buildDeeplabTestModel,
  'yolov8-test': buildYoloTestModel,
};

export function generateTestModels(dir = loadConfig().MODELHUB_GENERATED_DIR): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, build] of Object.entries(GENERATORS)) {
    const file = path.join(dir, `${name}.onnx`);
    const bytes = build();
    if (fs.existsSync(file) && Buffer.compare(fs.readFileSync(file), Buffer.from(bytes)) === 0) continue;
    fs.writeFileSync(file, bytes);
    written.push(file);
  }
  return written;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const written = generateTestModels();
  console.log(written.length ? `wrote ${written.join(', ')}` : 'test models up to date');
}
