/** @modelhub/client: the TypeScript SDK of ModelHub. ESM, no dependencies beyond fetch and WebCrypto. */
export { ModelHub, isFinished, outputOf } from './client.js';
export { ErrorCodes, ModelHubConnectionError, ModelHubError, WaitTimeoutError, WebhookVerificationError, statusOfErrorCode, } from './errors.js';
export { signWebhook, verifyWebhook } from './webhooks.js';
