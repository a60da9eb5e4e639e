import type { Config } from '../config';
import type { Clock } from '../domain/time';
import { SecretError, type StageSecret } from '../secrets/stageSecret';
import { eventBridgeSink } from './eventBridgeSink';
import type { EventSink } from './eventSink';
import { webhookSink } from './webhookSink';

/** A webhook not answered within this failed; a receiver should answer first and work after. */
export const WEBHOOK_TIMEOUT_MS = 5_000;
const WEBHOOK_CONCURRENCY = 8;

/**
 * The targets configured for this stage: the shop's webhook (SHOP_WEBHOOK_URL, signed with the stage
 * secret's `shop.webhook_secret`, and with `shop.webhook_previous_secret` too while one is there) and an
 * EventBridge bus (EVENT_BUS_NAME). The EventBridge client is loaded only when a bus is configured.
 */
export async function eventSinks(config: Config['events'], shop: StageSecret['shop'], now: Clock): Promise<EventSink[]> {
  const sinks: EventSink[] = [];
  if (config.webhookUrl) {
    if (!shop.webhookSecret) throw new SecretError('shop.webhook_secret is required when SHOP_WEBHOOK_URL is set');
    const secrets: [string, ...string[]] = shop.webhookPreviousSecret ? [shop.webhookSecret, shop.webhookPreviousSecret] : [shop.webhookSecret];
    sinks.push(webhookSink({ url: config.webhookUrl, secrets, timeoutMs: WEBHOOK_TIMEOUT_MS, concurrency: WEBHOOK_CONCURRENCY, now }));
  }
  if (config.busName) {
    const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
    sinks.push(eventBridgeSink(new EventBridgeClient({}), config.busName));
  }
  return sinks;
}
