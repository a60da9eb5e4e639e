/**
 * The demo receiver of the shop's events, as a shop would write one: it verifies each webhook's
 * `Paynow-Signature` over the raw body, prints the event (type and order id on one line), answers 200,
 * and ignores an event id it has already taken (deliveries are at least once). `npm start` runs it as
 * the local stack's webhook; the tests use it as the shop's endpoint, telling it to fail on purpose.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ShopEvent } from '../../lib/domain/events';
import { SIGNATURE_HEADER, verifyEventSignature } from '../../lib/events/signature';

export interface EventReceiver {
  url: string;
  /** Events taken, each once, in the order they arrived. */
  received: ShopEvent[];
  /** Every delivery that reached it, taken or not. */
  deliveries: { id?: string; status: number; signature?: string; body: string }[];
  /** Answers the next `count` deliveries with HTTP 500 (an endpoint that is down). */
  failNext(count: number): void;
  close(): Promise<void>;
}

export async function startEventReceiver(options: { secret: string; port?: number; host?: string; print?: boolean }): Promise<EventReceiver> {
  const received: ShopEvent[] = [];
  const deliveries: EventReceiver['deliveries'] = [];
  const seen = new Set<string>();
  let failing = 0;

  const answer = (res: ServerResponse, status: number, id: string | undefined, signature: string | undefined, body: string) => {
    deliveries.push({ id, status, signature, body });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['paynow-event-id'] as string | undefined;
      const signature = req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined;
      if (!verifyEventSignature(signature, body, options.secret, new Date())) {
        if (options.print) console.log(`event REFUSED: bad ${SIGNATURE_HEADER} (id ${id ?? '?'})`);
        return answer(res, 401, id, signature, body);
      }
      if (failing > 0) {
        failing--;
        return answer(res, 500, id, signature, body);
      }
      const event = JSON.parse(body) as ShopEvent;
      if (!seen.has(event.id)) {
        seen.add(event.id);
        received.push(event);
        if (options.print) console.log(`event ${event.type} order_id=${event.data.order_id} (${event.id})`);
      }
      answer(res, 200, event.id, signature, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/paynow/events`,
    received,
    deliveries,
    failNext: (count) => {
      failing = count;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
