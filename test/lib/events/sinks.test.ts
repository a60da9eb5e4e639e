import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { orderClosedEvent } from '../../../lib/domain/events';
import { eventSinks } from '../../../lib/events/eventSinks';
import { webhookSink } from '../../../lib/events/webhookSink';
import { SecretError } from '../../../lib/secrets/stageSecret';

/** The targets as configured, and the webhook's answers other than 2xx, over real HTTP. */
const outbox = (orderId: number) => {
  const event = orderClosedEvent({ orderId, userId: 7 }, undefined, '2026-11-29T08:00:00.000Z');
  return { event, body: JSON.stringify(event), status: 'pending' as const, deliveredTo: [], attempts: 0, deliveries: [] };
};
const now = () => new Date();
const SECRET = 'w'.repeat(40);

describe('eventSinks', () => {
  it('none configured: no target (events wait in the outbox)', async () => {
    expect(await eventSinks({}, undefined, now)).toEqual([]);
  });

  it('a webhook URL without shop.webhook_secret fails, naming the field', async () => {
    await expect(eventSinks({ webhookUrl: 'https://shop.example.com/paynow' }, undefined, now)).rejects.toThrow(SecretError);
    await expect(eventSinks({ webhookUrl: 'https://shop.example.com/paynow' }, undefined, now)).rejects.toThrow(/shop\.webhook_secret/);
  });

  it('webhook and bus: both targets, in that order', async () => {
    const sinks = await eventSinks({ webhookUrl: 'https://shop.example.com/paynow', busName: 'shop-bus' }, SECRET, now);
    expect(sinks.map((s) => s.target)).toEqual(['webhook', 'eventbridge']);
  });
});

describe('webhookSink', () => {
  let server: Server;
  let answer: (res: import('node:http').ServerResponse) => void;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send = (over: Partial<Parameters<typeof webhookSink>[0]> = {}) =>
    webhookSink({ url, secret: SECRET, timeoutMs: 300, concurrency: 2, now, ...over }).send([outbox(1), outbox(2), outbox(3)]);

  it('any 2xx acknowledges, every event on its own', async () => {
    answer = (res) => res.writeHead(204).end();
    expect(await send()).toEqual(['ok', 'ok', 'ok']);
  });

  it('another status is a failed attempt, with the status as the reason', async () => {
    answer = (res) => res.writeHead(503).end('down');
    expect(await send()).toEqual(['http 503', 'http 503', 'http 503']);
    answer = (res) => res.writeHead(302, { location: '/elsewhere' }).end();
    expect(await send()).toEqual(['http 302', 'http 302', 'http 302']);
  });

  it('no answer within the timeout is a failed attempt', async () => {
    answer = () => undefined; // never answers
    expect(await send({ timeoutMs: 200 })).toEqual(Array(3).fill(expect.stringMatching(/timeout|ECONNRESET|socket hang up/)));
  });

  it('nothing listening is a failed attempt', async () => {
    expect(await send({ url: 'http://127.0.0.1:1/events' })).toEqual(Array(3).fill('ECONNREFUSED'));
  });
});
