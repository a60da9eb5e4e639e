import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { OutboxEvent } from '../domain/events';
import type { EventSink, SendResult } from './eventSink';

/** PutEvents takes at most 10 entries per call. */
const ENTRIES_PER_CALL = 10;

/** The `source` of every paynow event on the bus; rules match on it and on `detail-type` (the event type). */
export const EVENT_SOURCE = 'paynow';

/**
 * Puts events on an EventBridge bus, ten per call. PutEvents can accept some entries of a call and
 * refuse others (`FailedEntryCount`, an `ErrorCode` per entry): each event gets its own entry's result,
 * so only the refused ones are tried again. A call that fails as a whole fails all its entries.
 */
export function eventBridgeSink(client: Pick<EventBridgeClient, 'send'>, busName: string): EventSink {
  return {
    target: 'eventbridge',
    async send(events) {
      const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
      const results: SendResult[] = [];
      for (let start = 0; start < events.length; start += ENTRIES_PER_CALL) {
        const chunk = events.slice(start, start + ENTRIES_PER_CALL);
        try {
          const answer = await client.send(
            new PutEventsCommand({
              Entries: chunk.map((outbox: OutboxEvent) => ({
                EventBusName: busName,
                Source: EVENT_SOURCE,
                DetailType: outbox.event.type,
                Detail: outbox.body,
                Time: new Date(outbox.event.created_at),
              })),
            }),
          );
          const entries = answer.Entries ?? [];
          results.push(...chunk.map((_, i) => entryResult(entries[i])));
        } catch (error) {
          results.push(...chunk.map(() => `PutEvents ${(error as Error).name}`));
        }
      }
      return results;
    },
  };
}

function entryResult(entry: { EventId?: string; ErrorCode?: string; ErrorMessage?: string } | undefined): SendResult {
  if (!entry) return 'no entry in the answer';
  if (entry.ErrorCode) return `${entry.ErrorCode}${entry.ErrorMessage ? `: ${entry.ErrorMessage}` : ''}`;
  return entry.EventId ? 'ok' : 'no event id in the answer';
}
