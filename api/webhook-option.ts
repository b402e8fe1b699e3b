/** The `webhook` option of a job or a batch: allowed only when signing is on, to a target the policy accepts. */
import { SpecError } from '../shared/errors.js';
import type { WebhookOptions } from '../shared/webhooks/options.js';
import { WebhookTargetError, type WebhookTargetPolicy } from '../shared/webhooks/target-policy.js';

export function checkWebhookTarget(
  webhooks: Pick<WebhookOptions, 'secret'>,
  targets: WebhookTargetPolicy,
  url: string,
): void {
  if (!webhooks.secret)
    throw new SpecError('INVALID_OPTION', 'webhooks are not enabled on this hub (WEBHOOK_SECRET is not set)');
  try {
    targets.checkUrl(url);
  } catch (err) {
    if (err instanceof WebhookTargetError) throw new SpecError('INVALID_OPTION', err.message);
    throw err;
  }
}
