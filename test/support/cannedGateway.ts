/**
 * A stand-in gateway for adapter tests: a local HTTP(S) server on a free port that answers each
 * request with what the test queued, so that answers the sandbox never gives (REFUND, PAYERROR,
 * TRADE_FINISHED, signed errors, forgeries, dropped connections) reach the adapters over real HTTP.
 * The answers themselves are built in test/support/cannedAnswers.ts, signed as the gateways sign.
 *
 * @example
 * const gateway = await startCannedGateway();
 * gateway.queue(wechatJsonAnswer(creds.wechat, 404, { code: 'ORDER_NOT_EXIST', message: '订单不存在' }));
 * await adapter.queryTrade('1T1'); // { state: 'not_found' }
 * expect(gateway.requests[0].path).toBe('/v3/pay/transactions/out-trade-no/1T1');
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * One answer: an HTTP reply as given, or a way of not giving one:
 * `drop` closes the connection on the request, `cut` sends the head and half the body then closes it,
 * `hang` never answers (the connection stays open until the gateway is reset or closed).
 */
export type CannedAnswer = { status: number; headers?: Record<string, string>; body: string } | 'drop' | 'cut' | 'hang';

/** A request as the stand-in received it. */
export interface CannedRequest {
  method: string;
  path: string;
  /** The query string's parameters, and a form body's over them (Alipay puts some in each). */
  params: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface CannedGateway {
  /** Origin (`http://127.0.0.1:port`, or https), no trailing slash. */
  url: string;
  /** Every request since the last reset, in order. */
  requests: CannedRequest[];
  /** Answers for the next requests, one each, in order; a request beyond them gets an unsigned 501. */
  queue(...answers: CannedAnswer[]): void;
  /** The same answer to every request from now on (an HTTP client that retries meets it again). */
  always(answer: CannedAnswer): void;
  /** Resolves once `count` requests have arrived since the last reset. */
  received(count: number): Promise<void>;
  /** Forgets requests and answers, and ends hanging connections. */
  reset(): void;
  close(): Promise<void>;
}

const NO_ANSWER: CannedAnswer = { status: 501, headers: { 'Content-Type': 'text/plain' }, body: 'no canned answer left' };

/** @param tls a key and certificate to serve HTTPS with (a certificate nobody trusts, for tests that expect refusal) */
export async function startCannedGateway(tls?: { key: string; cert: string }): Promise<CannedGateway> {
  const requests: CannedRequest[] = [];
  let queued: CannedAnswer[] = [];
  let fallback: CannedAnswer = NO_ANSWER;
  const hanging = new Set<http.ServerResponse>();
  const arrivals = new EventEmitter();

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://canned');
      const params: Record<string, string> = Object.fromEntries(url.searchParams);
      if (String(req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded'))
        Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
      requests.push({ method: req.method ?? '', path: url.pathname, params, headers: req.headers, body });
      arrivals.emit('request');
      give(queued.shift() ?? fallback, res);
    });
  };

  const give = (answer: CannedAnswer, res: http.ServerResponse) => {
    if (answer === 'drop') {
      res.socket?.destroy();
    } else if (answer === 'hang') {
      hanging.add(res);
    } else if (answer === 'cut') {
      const body = '{"code":"SYSTEM_ERROR","message":"the rest of this answer never arrives"}';
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
      res.write(body.slice(0, body.length / 2), () => res.socket?.destroy());
    } else {
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body);
    }
  };

  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const endHanging = () => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
  };

  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    queue: (...answers) => {
      queued.push(...answers);
    },
    always: (answer) => {
      queued = [];
      fallback = answer;
    },
    received: (count) =>
      new Promise((resolve) => {
        const check = () => {
          if (requests.length < count) return;
          arrivals.off('request', check);
          resolve();
        };
        arrivals.on('request', check);
        check();
      }),
    reset: () => {
      requests.length = 0;
      queued = [];
      fallback = NO_ANSWER;
      endHanging();
    },
    close: async () => {
      endHanging();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
