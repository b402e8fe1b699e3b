/**
 * Writes every generated test model into MODELHUB_GENERATED_DIR (default models/.generated).
 * Idempotent: a model already written with the same bytes is left alone.
 *   npm run models:generate
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../shared/config.js';
import { BERT_TEST, bertTestVocabText, buildBertTestModel } from './bert-test-model.js';
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
  'bert-test': buildBertTestModel,
};

/** Files a test model needs besides its ONNX file (a text model's vocabulary), by file name. */
export const GENERATED_FILES: Record<string, () => string | Uint8Array> = {
  [BERT_TEST.vocabFile]: bertTestVocabText,
};

export function generateTestModels(dir = loadConfig().MODELHUB_GENERATED_DIR): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const outputs: [string, () => string | Uint8Array][] = [
    ...Object.entries(GENERATORS).map(([name, build]): [string, () => Uint8Array] => [`${name}.onnx`, build]),
    ...Object.entries(GENERATED_FILES),
  ];
  for (const [name, build] of outputs) {
    const file = path.join(dir, name);
    const bytes = Buffer.from(build());
    if (fs.existsSync(file) && Buffer.compare(fs.readFileSync(file), bytes) === 0) continue;
    fs.writeFileSync(file, bytes);
    written.push(file);
  }
  return written;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const written = generateTestModels();
  console.log(written.length ? `wrote ${written.join(', ')}` : 'test models up to date');
}
