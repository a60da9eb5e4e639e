import type { OutboxEvent } from '../domain/events';
import { requestFunctionFor } from '../outboundHttp';
import type { EventSink, SendResult } from './eventSink';
import { SIGNATURE_HEADER, signEvent } from './signature';

export interface WebhookSettings {
  url: string;
  /** The key the deliveries are signed with, and the previous one after it while the shop moves to the new one. */
  secrets: readonly [string, ...string[]];
  /** A delivery not answered within this failed (and is tried again later). */
  timeoutMs: number;
  /** Deliveries in flight at once (to different orders: one order's events go one at a time). */
  concurrency: number;
  now: () => Date;
}

/**
 * POSTs each event to the shop's URL, signed; any 2xx answer acknowledges it. Anything else (another
 * status, a timeout, a refused connection) is a failed attempt, recorded with its reason.
 */
export function webhookSink(settings: WebhookSettings): EventSink {
  return {
    target: 'webhook',
    async send(events) {
      const results: SendResult[] = new Array(events.length);
      let next = 0;
      const worker = async () => {
        while (next < events.length) {
          const i = next++;
          results[i] = await post(settings, events[i] as OutboxEvent);
        }
      };
      await Promise.all(Array.from({ length: Math.min(settings.concurrency, events.length) }, worker));
      return results;
    },
  };
}

async function post(settings: WebhookSettings, outbox: OutboxEvent): Promise<SendResult> {
  const url = new URL(settings.url);
  const body = Buffer.from(outbox.body, 'utf8');
  const request = await requestFunctionFor(url);
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': body.length,
          'user-agent': 'paynow-webhooks/1',
          'paynow-event-id': outbox.event.id,
          'paynow-event-type': outbox.event.type,
          [SIGNATURE_HEADER.toLowerCase()]: signEvent(outbox.body, settings.secrets, settings.now()),
        },
      },
      (res) => {
        // The answer's body is not read beyond draining it: only the status counts.
        res.resume();
        res.on('end', () => resolve(res.statusCode && res.statusCode >= 200 && res.statusCode < 300 ? 'ok' : `http ${res.statusCode}`));
        res.on('error', (error) => resolve(`answer ${(error as NodeJS.ErrnoException).code ?? error.message}`));
      },
    );
    // One timer for the whole exchange (connect, send, answer): an answer trickling in byte by byte,
    // never idle for long, is cut as surely as a silent one.
    const total = setTimeout(() => req.destroy(new Error('timeout')), settings.timeoutMs);
    req.on('close', () => clearTimeout(total));
    req.on('error', (error) => resolve((error as NodeJS.ErrnoException).code ?? error.message));
    req.end(body);
  });
}
