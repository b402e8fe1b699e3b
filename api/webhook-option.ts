/** The `webhook` option of a job or a batch: allowed only when signing is on, to a target the policy accepts. */
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import { WebhookTargetError, type WebhookTargetPolicy } from '../shared/webhooks/target-policy.js';

export function checkWebhookTarget(
  config: Pick<Config, 'WEBHOOK_SECRET'>,
  targets: WebhookTargetPolicy,
  url: string,
): void {
  if (!config.WEBHOOK_SECRET)
    throw new SpecError('INVALID_OPTION', 'webhooks are not enabled on this hub (WEBHOOK_SECRET is not set)');
  try {
    targets.checkUrl(url);
  } catch (err) {
    if (err instanceof WebhookTargetError) throw new SpecError('INVALID_OPTION', err.message);
    throw err;
  }
}
