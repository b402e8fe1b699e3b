/** Generates the test models once per run (idempotent). */
import { generateTestModels } from '../../models/tools/generate-test-models.js';

export default function setup(): void {
  generateTestModels();
}
