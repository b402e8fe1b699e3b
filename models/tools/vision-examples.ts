/**
 * Writes the example images of the vision models (models/<name>/example.png): small
 * synthetic scenes, a few KB each. Rerun after changing a scene:
 *   npx tsx models/tools/vision-examples.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT } from '../../shared/config.js';

const TEXT_SCENE = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="16" y="52" font-family="DejaVu Sans" font-size="34">ModelHub</text>
<text x="24" y="112" font-family="DejaVu Sans" font-size="22">reads text 2020</text>
</svg>`;

// Coloured shapes on grey: the test stand-ins react to red, green and blue regions.
const OBJECT_SCENE = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
<rect width="100%" height="100%" fill="#8a8a8a"/>
<rect x="30" y="40" width="90" height="150" fill="#e01010"/>
<circle cx="220" cy="120" r="60" fill="#10c020"/>
<rect x="150" y="190" width="140" height="35" fill="#1030e0"/>
</svg>`;

const EXAMPLES: Record<string, string> = {
  'text-detection': TEXT_SCENE,
  'text-segmentation': TEXT_SCENE,
  'text-instances': TEXT_SCENE,
  'faster-rcnn': OBJECT_SCENE,
  'mask-rcnn': OBJECT_SCENE,
  deeplabv3: OBJECT_SCENE,
  yolov8: OBJECT_SCENE,
};

for (const [model, scene] of Object.entries(EXAMPLES)) {
  const file = path.join(REPO_ROOT, 'models', model, 'example.png');
  fs.writeFileSync(
    file,
    await sharp(Buffer.from(scene)).flatten({ background: '#ffffff' }).png({ palette: true }).toBuffer(),
  );
  console.log(`${file}: ${fs.statSync(file).size} bytes`);
}
