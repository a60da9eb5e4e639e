/**
 * The HTTP exchange with WeChat Pay, against a bare local server that answers exactly what each test
 * says (signed with the sandbox platform key, as WeChat signs): what a request carries, which answers
 * are errors, and connections that fail or break mid-answer.
 */
import { createPrivateKey } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayError } from '../../../lib/gateways/paymentGateway';
import { WechatPayGateway } from '../../../lib/gateways/wechatPay';
import { WechatPayApi } from '../../../lib/gateways/wechatPayApi';
import { WechatSignatureVerifier } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { wechatSignatureHeaders } from '../../../scripts/sandbox/signing';

let creds: SandboxCredentials['wechat'];
let server: Server;
let api: WechatPayApi;
let answer: (request: IncomingMessage & { body: string }, response: ServerResponse) => void;
const received: { method?: string; headers: IncomingMessage['headers']; body: string }[] = [];

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ method: request.method, headers: request.headers, body });
      answer(Object.assign(request, { body }), response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = apiAt(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  received.length = 0;
});

function apiAt(gatewayUrl: string) {
  return new WechatPayApi({
    mchid: creds.mchid,
    merchantSerial: creds.merchant_serial,
    merchantPrivateKey: createPrivateKey(creds.merchant_private_key_pem),
    gatewayUrl,
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    now: () => new Date(),
  });
}

/** Answers `status` with `body`, signed as WeChat signs it. */
const signed = (status: number, body: string) => (_request: IncomingMessage, response: ServerResponse) => {
  response.writeHead(status, { 'content-type': 'application/json', ...wechatSignatureHeaders(creds, body) });
  response.end(body);
};

describe('a request', () => {
  it('POSTs its JSON body as application/json, asking for JSON back', async () => {
    answer = signed(200, '{"prepay_id":"wx1"}');
    expect(await api.post('/v3/pay/transactions/app', { out_trade_no: '1T1' })).toEqual({ status: 200, data: { prepay_id: 'wx1' } });
    expect(received[0]).toMatchObject({
      method: 'POST',
      body: '{"out_trade_no":"1T1"}',
      headers: { accept: 'application/json', 'content-type': 'application/json', authorization: expect.stringMatching(/^WECHATPAY2-SHA256-RSA2048 mchid="/) },
    });
  });

  it('GETs with no body and no content type', async () => {
    answer = signed(200, '{"trade_state":"NOTPAY"}');
    expect(await api.get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')).toEqual({ status: 200, data: { trade_state: 'NOTPAY' } });
    expect(received[0]).toMatchObject({ method: 'GET', body: '', headers: { accept: 'application/json' } });
    expect(received[0].headers).not.toHaveProperty('content-type');
    expect(received[0].headers['content-length'] ?? '0').toBe('0');
    expect(received[0].headers).not.toHaveProperty('transfer-encoding');
  });
});

describe('an answer', () => {
  it.each([
    [204, '', { status: 204 }],
    [299, '{"ok":true}', { status: 299, data: { ok: true } }],
  ])('of HTTP %i is a success', async (status, body, expected) => {
    answer = signed(status, body);
    expect(await api.post('/v3/pay/transactions/out-trade-no/1T1/close', {})).toEqual(expected);
  });

  it.each([
    [404, '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}', { status: 404, code: 'ORDER_NOT_EXIST', message: '订单不存在' }],
    [300, '{"code":"X","message":"y"}', { status: 300, code: 'X', message: 'y' }],
    [500, 'not json', { status: 500 }],
  ])('of HTTP %i is an error with WeChat code and message, never data', async (status, body, expected) => {
    answer = signed(status, body);
    expect(await api.get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')).toEqual(expected);
  });
});

describe('a connection', () => {
  it('that cannot be made fails as the gateway being unreachable, with the cause kept for the log', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const failure = await apiAt(`http://127.0.0.1:${port}`)
      .get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({ message: 'wechat gateway unreachable: Error', cause: { code: 'ECONNREFUSED' } });
  });

  it('that breaks in the middle of the answer fails as unreachable, not as a partial answer', async () => {
    answer = (_request, response) => {
      const body = '{"trade_state":"SUCCESS","amount":{"total":8800}}';
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), ...wechatSignatureHeaders(creds, body) });
      response.write(body.slice(0, 10));
      setTimeout(() => response.socket?.destroy(), 20);
    };
    const failure = await api.get('/v3/pay/transactions/out-trade-no/1T1?mchid=1').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({
      message: 'wechat gateway unreachable: ConnectionClosed',
      cause: { name: 'ConnectionClosed', message: 'connection closed before the answer ended' },
    });
  });

  it('that gets no answer is given up after 5 s in all (TimeoutError)', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      answer = () => undefined; // never answers
      let settled = false;
      const failure = api
        .get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')
        .catch((error: unknown) => error)
        .finally(() => (settled = true));
      await jest.advanceTimersByTimeAsync(4_999);
      expect(settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(await failure).toMatchObject({ message: 'wechat gateway unreachable: TimeoutError', cause: { message: 'no answer within 5000 ms' } });
    } finally {
      jest.useRealTimers();
    }
  });

  it('that the server drops before answering fails as unreachable', async () => {
    answer = (request) => request.socket.destroy();
    const failure = await api.get('/v3/pay/transactions/out-trade-no/1T1?mchid=1').catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: expect.stringMatching(/^wechat gateway unreachable: /), cause: { code: 'ECONNRESET' } });
  });
});

describe('the gateway, on answers the sandbox never gives', () => {
  const gateway = () =>
    new WechatPayGateway({
      appid: creds.appid,
      mchid: creds.mchid,
      merchantSerial: creds.merchant_serial,
      merchantPrivateKeyPem: creds.merchant_private_key_pem,
      gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      notifyUrl: 'https://pay.example.com/notify/wechat',
      refundNotifyUrl: 'https://pay.example.com/notify/wechat/refund',
      verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
      now: () => new Date(),
    });
  const prepay = { outTradeNo: '1T1', amountFen: 8800, subject: '保温杯', expiresAt: new Date(Date.now() + 30 * 60_000) };
  const trade = (over: Record<string, unknown> = {}) =>
    JSON.stringify({
      out_trade_no: '1T1',
      mchid: creds.mchid,
      appid: creds.appid,
      trade_type: 'APP',
      trade_state: 'SUCCESS',
      transaction_id: '4200001234202611281234567890',
      amount: { total: 8800, currency: 'CNY' },
      ...over,
    });

  it('a prepay answered 200 without a prepay_id, or other than 200 with one, is a failure, never a pay_param', async () => {
    answer = signed(200, '{}');
    await expect(gateway().createPayParam(prepay)).rejects.toThrow(new GatewayError('wechat prepay failed: HTTP 200'));
    answer = signed(202, '{"prepay_id":"wx1"}');
    await expect(gateway().createPayParam(prepay)).rejects.toThrow(new GatewayError('wechat prepay failed: HTTP 202'));
  });

  it('a query is answered by a 200 only: a 202 about the trade, or a 500, is a failure', async () => {
    answer = signed(202, trade());
    await expect(gateway().queryTrade('1T1')).rejects.toThrow(new GatewayError('wechat query failed: HTTP 202'));
    answer = signed(500, '{"code":"SYSTEM_ERROR"}');
    await expect(gateway().queryTrade('1T1')).rejects.toThrow(new GatewayError('wechat query failed: HTTP 500 SYSTEM_ERROR'));
  });

  it('a paid trade without success_time is paid, its time left to the clock of whoever records it', async () => {
    answer = signed(200, trade());
    expect(await gateway().queryTrade('1T1')).toEqual({ state: 'paid', transactionId: '4200001234202611281234567890', amountFen: 8800, paidAt: '' });
  });

  it.each([
    [404, '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}'],
    [400, '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}'],
    [400, '{"code":"ORDER_CLOSED","message":"订单已关闭"}'],
  ])('closing a trade WeChat answers %i %s about is done: there is nothing to pay', async (status, body) => {
    answer = signed(status, body);
    await expect(gateway().closeTrade('1T1')).resolves.toBeUndefined();
  });
});
