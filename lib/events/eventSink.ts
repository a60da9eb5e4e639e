import type { EventTarget, OutboxEvent } from '../domain/events';

/** `ok`, or why the target did not take the event (kept in the event's delivery record). */
export type SendResult = 'ok' | string;

/** A place events are delivered to: the shop's webhook, an EventBridge bus. One result per event, in order. */
export interface EventSink {
  target: EventTarget;
  send(events: OutboxEvent[]): Promise<SendResult[]>;
}
