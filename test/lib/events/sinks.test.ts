import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, globalAgent } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { generate as selfSignedCertificate } from 'selfsigned';
import { orderClosedEvent } from '../../../lib/domain/events';
import { eventSinks } from '../../../lib/events/eventSinks';
import { verifyEventSignature } from '../../../lib/events/signature';
import { webhookSink } from '../../../lib/events/webhookSink';
import { SecretError } from '../../../lib/secrets/stageSecret';

/** The targets as configured, and the webhook over real HTTP(S): what the shop receives, and what each kind of answer counts as. */
const outbox = (orderId: number) => {
  const event = orderClosedEvent({ orderId, userId: 7 }, undefined, '2026-11-29T08:00:00.000Z');
  return { event, body: JSON.stringify(event), status: 'pending' as const, deliveredTo: [], attempts: 0, deliveries: [] };
};
const now = () => new Date();
const SECRET = 'w'.repeat(40);

describe('eventSinks', () => {
  it('none configured: no target (events wait in the outbox)', async () => {
    expect(await eventSinks({}, {}, now)).toEqual([]);
  });

  it('a webhook URL without shop.webhook_secret fails, naming the field', async () => {
    await expect(eventSinks({ webhookUrl: 'https://shop.example.com/paynow' }, {}, now)).rejects.toThrow(SecretError);
    await expect(eventSinks({ webhookUrl: 'https://shop.example.com/paynow' }, {}, now)).rejects.toThrow(/shop\.webhook_secret/);
  });

  it('webhook and bus: both targets, in that order', async () => {
    const sinks = await eventSinks({ webhookUrl: 'https://shop.example.com/paynow', busName: 'shop-bus' }, { webhookSecret: SECRET }, now);
    expect(sinks.map((s) => s.target)).toEqual(['webhook', 'eventbridge']);
  });
});

describe('webhookSink', () => {
  let server: Server;
  let answer: (res: ServerResponse) => void;
  let received: { method: string; headers: IncomingHttpHeaders; body: string }[];
  let inFlight: number;
  let mostInFlight: number;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      res.on('close', () => inFlight--);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        answer(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });
  beforeEach(() => {
    received = [];
    inFlight = 0;
    mostInFlight = 0;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const settings = (over: Partial<Parameters<typeof webhookSink>[0]> = {}) => ({
    url,
    secrets: [SECRET] as [string],
    timeoutMs: 300,
    concurrency: 2,
    now,
    ...over,
  });
  const send = (over: Partial<Parameters<typeof webhookSink>[0]> = {}) => webhookSink(settings(over)).send([outbox(1), outbox(2), outbox(3)]);

  it('each event is POSTed as JSON, named and signed so the shop can verify it', async () => {
    answer = (res) => res.writeHead(204).end();
    const event = outbox(1);
    expect(await webhookSink(settings()).send([event])).toEqual(['ok']);
    const [request] = received;
    expect(request).toMatchObject({ method: 'POST', body: event.body });
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(event.body)),
      'user-agent': 'paynow-webhooks/1',
      'paynow-event-id': event.event.id,
      'paynow-event-type': 'order.closed',
    });
    expect(verifyEventSignature(request?.headers['paynow-signature'] as string, request?.body ?? '', SECRET, new Date())).toBe(true);
  });

  it('as configured from the stage secret: with a previous key there (a rotation) each delivery verifies under either key; without, only under the current one', async () => {
    answer = (res) => res.writeHead(204).end();
    const previous = 'o'.repeat(40);
    const verifiesUnder = async (shop: { webhookSecret: string; webhookPreviousSecret?: string }) => {
      received = [];
      const [sink] = await eventSinks({ webhookUrl: url }, shop, now);
      expect(await sink?.send([outbox(1)])).toEqual(['ok']);
      const [request] = received;
      return [SECRET, previous].map((key) => verifyEventSignature(request?.headers['paynow-signature'] as string, request?.body ?? '', key, new Date()));
    };
    expect(await verifiesUnder({ webhookSecret: SECRET, webhookPreviousSecret: previous })).toEqual([true, true]);
    expect(await verifiesUnder({ webhookSecret: SECRET })).toEqual([true, false]);
  });

  it('any 2xx acknowledges, every event on its own', async () => {
    answer = (res) => res.writeHead(204).end();
    expect(await send()).toEqual(['ok', 'ok', 'ok']);
    answer = (res) => res.writeHead(299).end();
    expect(await send()).toEqual(['ok', 'ok', 'ok']);
  });

  it('another status is a failed attempt, with the status as the reason', async () => {
    answer = (res) => res.writeHead(503).end('down');
    expect(await send()).toEqual(['http 503', 'http 503', 'http 503']);
    answer = (res) => res.writeHead(300).end();
    expect(await send()).toEqual(['http 300', 'http 300', 'http 300']);
    answer = (res) => res.writeHead(302, { location: '/elsewhere' }).end();
    expect(await send()).toEqual(['http 302', 'http 302', 'http 302']);
  });

  it('a final status below 200, which only a broken server sends, is a failed attempt', async () => {
    // node:http would not write such a status line; a bare socket does, and Node's client takes it as final.
    const broken = createTcpServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n')));
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/events`;
      expect(await webhookSink(settings({ url: brokenUrl })).send([outbox(1)])).toEqual(['http 99']);
    } finally {
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }
  });

  it('no more than `concurrency` deliveries are in flight at once, and every event is sent', async () => {
    answer = (res) => setTimeout(() => res.writeHead(204).end(), 40);
    const events = [1, 2, 3, 4, 5].map(outbox);
    expect(await webhookSink(settings({ concurrency: 2 })).send(events)).toEqual(Array(5).fill('ok'));
    expect(mostInFlight).toBe(2);
    expect(received.map((r) => r.headers['paynow-event-id']).sort()).toEqual(events.map((e) => e.event.id).sort());
  });

  it('a concurrency above the number of events sends each event once, all at once', async () => {
    answer = (res) => setTimeout(() => res.writeHead(204).end(), 40);
    expect(await send({ concurrency: 10 })).toEqual(['ok', 'ok', 'ok']);
    expect(received).toHaveLength(3);
    expect(mostInFlight).toBe(3);
  });

  it('no answer within the timeout is a failed attempt', async () => {
    answer = () => undefined; // never answers
    expect(await send({ timeoutMs: 200 })).toEqual(['timeout', 'timeout', 'timeout']);
  });

  it('an answer trickling in byte by byte is cut at the timeout, although the connection is never idle that long', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-length': '40' });
      const trickle = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(trickle));
    };
    const started = Date.now();
    expect(await webhookSink(settings({ timeoutMs: 150 })).send([outbox(1)])).toEqual(['timeout']);
    expect(Date.now() - started).toBeLessThan(600);
  });

  // The timeout cannot cut this one (the request is over once the socket closes): unless the answer's
  // error settles the delivery, it never settles, so the test fails within 2 s rather than jest's 30.
  it('an answer cut off before its body ends is a failed attempt', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"received":', () => res.socket?.destroy());
    };
    expect(await send()).toEqual(['answer ECONNRESET', 'answer ECONNRESET', 'answer ECONNRESET']);
  }, 2_000);

  it('a delivery answered in time leaves no timer running behind it', async () => {
    answer = (res) => res.writeHead(204).end();
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    expect(await send({ timeoutMs: 10_000 })).toEqual(['ok', 'ok', 'ok']);
    expect(timers()).toBe(before);
  });

  it('nothing listening is a failed attempt', async () => {
    expect(await send({ url: 'http://127.0.0.1:1/events' })).toEqual(Array(3).fill('ECONNREFUSED'));
  });

  describe('an https URL', () => {
    let tlsServer: Server;
    let tlsUrl: string;
    let cert: string;
    let tlsReceived: number;
    beforeAll(async () => {
      const generated = await selfSignedCertificate([{ name: 'commonName', value: '127.0.0.1' }], {
        keyType: 'ec',
        algorithm: 'sha256',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
      });
      cert = generated.cert;
      tlsServer = createTlsServer({ key: generated.private, cert }, (req, res) => {
        tlsReceived++;
        req.resume();
        req.on('end', () => res.writeHead(204).end());
      });
      await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
      tlsUrl = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}/events`;
    });
    beforeEach(() => {
      tlsReceived = 0;
    });
    afterAll(() => new Promise<void>((resolve) => tlsServer.close(() => resolve())));

    it('is delivered over TLS', async () => {
      // The sink has no CA setting of its own; it trusts what node:https's default agent trusts.
      globalAgent.options.ca = cert;
      try {
        expect(await send({ url: tlsUrl })).toEqual(['ok', 'ok', 'ok']);
        expect(tlsReceived).toBe(3);
      } finally {
        delete globalAgent.options.ca;
      }
    });

    it('whose certificate is not trusted is a failed attempt: nothing is sent to it', async () => {
      expect(await send({ url: tlsUrl })).toEqual(Array(3).fill('DEPTH_ZERO_SELF_SIGNED_CERT'));
      expect(tlsReceived).toBe(0);
    });
  });
});
