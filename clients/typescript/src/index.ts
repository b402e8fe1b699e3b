/** @modelhub/client: the TypeScript SDK of ModelHub. ESM, no dependencies beyond fetch and WebCrypto. */
export { ModelHub, isFinished, outputOf } from './client.js';
export type { Finished, ModelHubOptions, PredictOptions, WaitOptions } from './client.js';
export {
  ErrorCodes,
  ModelHubConnectionError,
  ModelHubError,
  WaitTimeoutError,
  WebhookVerificationError,
  statusOfErrorCode,
} from './errors.js';
export type { ErrorName } from './errors.js';
export { signWebhook, verifyWebhook } from './webhooks.js';
export type { HeaderBag, VerifyOptions } from './webhooks.js';
export type * from './types.js';
