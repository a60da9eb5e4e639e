import type { Config } from '../config';
import type { Clock } from '../domain/time';
import { SecretError } from '../secrets/stageSecret';
import { eventBridgeSink } from './eventBridgeSink';
import type { EventSink } from './eventSink';
import { webhookSink } from './webhookSink';

/** A webhook not answered within this failed; a receiver should answer first and work after. */
export const WEBHOOK_TIMEOUT_MS = 5_000;
const WEBHOOK_CONCURRENCY = 8;

/**
 * The targets configured for this stage: the shop's webhook (SHOP_WEBHOOK_URL, signed with the stage
 * secret's `shop.webhook_secret`) and an EventBridge bus (EVENT_BUS_NAME). The EventBridge client is
 * loaded only when a bus is configured.
 */
export async function eventSinks(config: Config['events'], webhookSecret: string | undefined, now: Clock): Promise<EventSink[]> {
  const sinks: EventSink[] = [];
  if (config.webhookUrl) {
    if (!webhookSecret) throw new SecretError('shop.webhook_secret is required when SHOP_WEBHOOK_URL is set');
    sinks.push(webhookSink({ url: config.webhookUrl, secret: webhookSecret, timeoutMs: WEBHOOK_TIMEOUT_MS, concurrency: WEBHOOK_CONCURRENCY, now }));
  }
  if (config.busName) {
    const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
    sinks.push(eventBridgeSink(new EventBridgeClient({}), config.busName));
  }
  return sinks;
}
