/**
 * The WeChat Pay adapter on canned answers, signed with the sandbox platform key exactly as WeChat
 * Pay signs (test/support/cannedAnswers.ts): every trade_state it maps, every signed refusal, and
 * every answer it must not vouch for.
 */
import { createPrivateKey, createVerify, generateKeyPairSync } from 'node:crypto';
import { createServer as createTcpServer } from 'node:net';
import { toBeijingRfc3339 } from '../../../lib/domain/time';
import { GatewayError, TradeAlreadyPaid, TradeClosed } from '../../../lib/gateways/paymentGateway';
import { WechatPayGateway, type WechatPayOptions } from '../../../lib/gateways/wechatPay';
import { WechatPayApi } from '../../../lib/gateways/wechatPayApi';
import { WechatSignatureVerifier } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type WechatSigning, wechatAnswer, wechatErrorAnswer, wechatJsonAnswer, wechatTransaction } from '../../support/cannedAnswers';
import { type CannedGateway, startCannedGateway } from '../../support/cannedGateway';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;

let creds: SandboxCredentials['wechat'];
let server: CannedGateway;
let gateway: WechatPayGateway;
let seq = 0;
function nextOutTradeNo(): string {
  seq += 1;
  return `501T${NOW.getTime()}${seq}`;
}

function wechatGateway(gatewayUrl: string, over: Partial<WechatPayOptions> = {}): WechatPayGateway {
  return new WechatPayGateway({
    appid: creds.appid,
    mchid: creds.mchid,
    merchantSerial: creds.merchant_serial,
    merchantPrivateKeyPem: creds.merchant_private_key_pem,
    gatewayUrl,
    notifyUrl: 'https://pay.example.com/notify/wechat',
    refundNotifyUrl: 'https://pay.example.com/notify/wechat/refund',
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    payPublicKeys: [{ id: creds.platform_serial }],
    now: () => NOW,
    ...over,
  });
}

/** Signed as WeChat signs, at the adapter's clock. */
const signedAt = (signing: WechatSigning = {}): WechatSigning => ({ timestamp: NOW_SECONDS, ...signing });
const json = (status: number, value: unknown, signing?: WechatSigning) => wechatJsonAnswer(creds, status, value, signedAt(signing));
const error = (status: number, code: string, message: string, signing?: WechatSigning) => wechatErrorAnswer(creds, status, code, message, signedAt(signing));
const trade = (outTradeNo: string, tradeState: string, over: Record<string, unknown> = {}) => ({
  ...wechatTransaction(creds, { outTradeNo, tradeState }),
  ...over,
});

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  server = await startCannedGateway();
  gateway = wechatGateway(server.url);
});
afterEach(() => server.reset());
afterAll(() => server.close());

describe('createPayParam', () => {
  const request = (outTradeNo: string, subject = '保温杯') => ({ outTradeNo, amountFen: 8800, subject, expiresAt: new Date(NOW.getTime() + 30 * 60_000) });

  it('prepays the APP order and hands back the pay_param the app SDK needs, signed with the merchant key', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, { prepay_id: 'wx28200000123456789012345678901234' }));
    const param = await gateway.createPayParam(request(outTradeNo));

    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: '/v3/pay/transactions/app' });
    expect(JSON.parse(server.requests[0].body)).toEqual({
      appid: creds.appid,
      mchid: creds.mchid,
      description: '保温杯',
      out_trade_no: outTradeNo,
      time_expire: toBeijingRfc3339(new Date(NOW.getTime() + 30 * 60_000)),
      notify_url: 'https://pay.example.com/notify/wechat',
      amount: { total: 8800, currency: 'CNY' },
    });
    expect(param).toMatchObject({ appid: creds.appid, partnerid: creds.mchid, prepayid: 'wx28200000123456789012345678901234', package: 'Sign=WXPay' });
    const signed = `${param.appid}\n${param.timestamp}\n${param.noncestr}\n${param.prepayid}\n`;
    expect(createVerify('RSA-SHA256').update(signed).verify(creds.merchant_cert_pem, param.sign, 'base64')).toBe(true);
    // Seconds since the epoch, as the app SDK takes it (a millisecond stamp fails WeChat's check in the app).
    expect(param.timestamp).toBe(String(NOW_SECONDS));
  });

  it('signs each request as WeChat checks it: METHOD, path with query, timestamp, nonce and the very body sent, under our mchid and serial', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, { prepay_id: 'wx1' }));
    server.queue(json(200, trade(outTradeNo, 'NOTPAY')));
    server.queue(wechatAnswer(creds, 204, '', signedAt()));
    await gateway.createPayParam(request(outTradeNo));
    await gateway.queryTrade(outTradeNo);
    await gateway.closeTrade(outTradeNo);

    const signedUrls = [
      `/v3/pay/transactions/app`,
      `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${creds.mchid}`,
      `/v3/pay/transactions/out-trade-no/${outTradeNo}/close`,
    ];
    const nonces = new Set<string>();
    server.requests.forEach(({ method, headers, body }, i) => {
      const authorization = String(headers.authorization);
      expect(authorization).toMatch(/^WECHATPAY2-SHA256-RSA2048 /);
      const fields = Object.fromEntries([...authorization.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      expect(fields).toMatchObject({ mchid: creds.mchid, serial_no: creds.merchant_serial, timestamp: String(NOW_SECONDS) });
      nonces.add(fields.nonce_str);
      const signed = `${method}\n${signedUrls[i]}\n${fields.timestamp}\n${fields.nonce_str}\n${body}\n`;
      expect(createVerify('RSA-SHA256').update(signed).verify(creds.merchant_cert_pem, fields.signature, 'base64')).toBe(true);
      // Node's https does not decompress: asking for gzip would hand the verifier compressed bytes.
      expect(headers['accept-encoding']).toBeUndefined();
      expect(headers['user-agent']).toBeTruthy();
      // The WeChat Pay public key WeChat is asked to sign its answer with (a merchant switching from platform certificates).
      expect(headers['wechatpay-serial']).toBe(creds.platform_serial);
    });
    expect(server.requests.map(({ method }) => method)).toEqual(['POST', 'GET', 'POST']);
    expect(server.requests[1].body).toBe('');
    expect(JSON.parse(server.requests[2].body)).toEqual({ mchid: creds.mchid });
    expect(nonces.size).toBe(3);
  });

  it('names no Wechatpay-Serial when the secret has platform certificates only', async () => {
    const certificatesOnly = wechatGateway(server.url, { payPublicKeys: [] });
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'NOTPAY')));
    await certificatesOnly.queryTrade(outTradeNo);
    expect(server.requests[0].headers).not.toHaveProperty('wechatpay-serial');
  });

  it('cuts the description to the 127 characters WeChat takes', async () => {
    server.queue(json(200, { prepay_id: 'wx1' }));
    await gateway.createPayParam(request(nextOutTradeNo(), '杯'.repeat(300)));
    expect(JSON.parse(server.requests[0].body).description).toBe('杯'.repeat(127));
  });

  it('ORDERPAID is TradeAlreadyPaid, so the order is not prepaid twice', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(error(400, 'ORDERPAID', '该订单已支付'));
    await expect(gateway.createPayParam(request(outTradeNo))).rejects.toEqual(new TradeAlreadyPaid(outTradeNo));
  });

  it.each(['ORDER_CLOSED', 'ORDERCLOSED'])('%s is TradeClosed: the trade can no longer be paid', async (code) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(error(400, code, '订单已关闭'));
    const failure = gateway.createPayParam(request(outTradeNo));
    await expect(failure).rejects.toBeInstanceOf(TradeClosed);
    await expect(failure).rejects.toMatchObject({ outTradeNo });
  });

  it.each([
    [400, 'INVALID_REQUEST', '201 商户订单号重复'],
    [400, 'PARAM_ERROR', '参数错误'],
    [403, 'NO_AUTH', '商户无权限'],
    [429, 'FREQUENCY_LIMITED', '频率超限'],
    [500, 'SYSTEM_ERROR', '系统错误'],
  ])('any other signed refusal (HTTP %i %s) is a GatewayError naming it', async (status, code, message) => {
    server.queue(error(status, code, message));
    await expect(gateway.createPayParam(request(nextOutTradeNo()))).rejects.toEqual(new GatewayError(`wechat prepay failed: HTTP ${status} ${code}`));
  });

  it('a refusal without a code is a GatewayError with the status alone', async () => {
    server.queue(json(500, { message: '系统繁忙' }));
    await expect(gateway.createPayParam(request(nextOutTradeNo()))).rejects.toEqual(new GatewayError('wechat prepay failed: HTTP 500'));
  });

  it('a signed 200 without prepay_id, or other than 200 with one, is a GatewayError, not a pay_param', async () => {
    server.queue(json(200, { code: 'SUCCESS' }));
    await expect(gateway.createPayParam(request(nextOutTradeNo()))).rejects.toEqual(new GatewayError('wechat prepay failed: HTTP 200'));
    server.queue(json(202, { prepay_id: 'wx28200000123456789012345678901234' }));
    await expect(gateway.createPayParam(request(nextOutTradeNo()))).rejects.toEqual(new GatewayError('wechat prepay failed: HTTP 202'));
  });

  it.each([
    ['ORDERPAID', 'TradeAlreadyPaid'],
    ['ORDER_CLOSED', 'TradeClosed'],
  ])('a forged %s is a GatewayError, never %s', async (code) => {
    server.queue(error(400, code, 'forged', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.createPayParam(request(nextOutTradeNo()))).rejects.toEqual(new GatewayError('wechat response signature: bad_signature'));
  });
});

describe('queryTrade maps each trade_state WeChat signs', () => {
  it('asks for the trade by out_trade_no under our mchid', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'NOTPAY')));
    await gateway.queryTrade(outTradeNo);
    expect(server.requests).toEqual([
      expect.objectContaining({ method: 'GET', path: `/v3/pay/transactions/out-trade-no/${outTradeNo}`, params: { mchid: creds.mchid } }),
    ]);
  });

  it("SUCCESS is paid, with the transaction id, payment time and the order's total (not what a coupon left the payer to pay)", async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(
      json(
        200,
        trade(outTradeNo, 'SUCCESS', {
          transaction_id: '4200001234202611281234567890',
          success_time: '2026-11-28T20:00:01+08:00',
          amount: { total: 8800, payer_total: 8300, currency: 'CNY', payer_currency: 'CNY' },
        }),
      ),
    );
    expect(await gateway.queryTrade(outTradeNo)).toEqual({
      state: 'paid',
      transactionId: '4200001234202611281234567890',
      amountFen: 8800,
      paidAt: '2026-11-28T20:00:01+08:00',
    });
  });

  it('REFUND is paid: the money arrived before it was refunded', async () => {
    const outTradeNo = nextOutTradeNo();
    const refunded = trade(outTradeNo, 'REFUND');
    server.queue(json(200, refunded));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({
      state: 'paid',
      transactionId: refunded.transaction_id,
      amountFen: 1234,
      paidAt: refunded.success_time,
    });
  });

  it.each(['NOTPAY', 'USERPAYING', 'PAYERROR'])('%s is unpaid, so the trade can still be closed', async (tradeState) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, tradeState)));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'unpaid' });
  });

  it.each(['CLOSED', 'REVOKED'])('%s is closed', async (tradeState) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, tradeState)));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'closed' });
  });

  it.each(['ACCEPT', 'success', ''])('an unknown trade_state (%j) is a GatewayError, never a guess', async (tradeState) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, tradeState)));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError(`wechat query: unknown trade_state ${tradeState}`));
  });

  it.each([
    ['a JSAPI trade', { trade_type: 'JSAPI' }],
    ['a trade in another currency', { amount: { total: 8800, currency: 'USD' } }],
  ])('a SUCCESS for %s is a GatewayError: paynow opens APP trades in CNY only', async (_what, over) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'SUCCESS', over)));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toThrow(/not an APP trade in CNY/);
  });

  it('a SUCCESS without transaction_id or amount is a GatewayError, as a notification without them is refused', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'SUCCESS', { transaction_id: undefined, amount: undefined, success_time: undefined })));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toBeInstanceOf(GatewayError);
  });

  it('a SUCCESS without success_time is paid, its time left to the clock of whoever records it', async () => {
    const outTradeNo = nextOutTradeNo();
    const answer = trade(outTradeNo, 'SUCCESS', { success_time: undefined });
    server.queue(json(200, answer));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'paid', transactionId: answer.transaction_id, amountFen: 1234, paidAt: '' });
  });

  it('a signed 404 ORDER_NOT_EXIST is not_found', async () => {
    server.queue(error(404, 'ORDER_NOT_EXIST', '订单不存在'));
    expect(await gateway.queryTrade(nextOutTradeNo())).toEqual({ state: 'not_found' });
  });

  it('any signed 404 is not_found, whatever its code', async () => {
    server.queue(error(404, 'RESOURCE_NOT_EXISTS', '资源不存在'));
    expect(await gateway.queryTrade(nextOutTradeNo())).toEqual({ state: 'not_found' });
  });

  it('ORDER_NOT_EXIST is not_found whatever the status it comes with', async () => {
    server.queue(error(400, 'ORDER_NOT_EXIST', '订单不存在'));
    expect(await gateway.queryTrade(nextOutTradeNo())).toEqual({ state: 'not_found' });
  });

  it('a forged ORDER_NOT_EXIST is a GatewayError: "not found" releases the points', async () => {
    server.queue(error(404, 'ORDER_NOT_EXIST', '订单不存在', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });

  it('an unsigned 404 with no body is a GatewayError, not not_found', async () => {
    server.queue({ status: 404, body: '' });
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });
});

describe('queryTrade refuses what it cannot vouch for', () => {
  it('a signed answer about another out_trade_no (a replay) is a GatewayError', async () => {
    server.queue(json(200, trade('501T1', 'SUCCESS')));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat query answered for another trade'));
  });

  it('a signed answer for another merchant is a GatewayError', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'SUCCESS', { mchid: '1900000109' })));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError('wechat query answered for another trade'));
  });

  it.each<[string, WechatSigning, string]>([
    ['signed with another key', { signWithKeyPem: otherKeyPem }, 'bad_signature'],
    ['changed after it was signed', { signedBody: '{"trade_state":"NOTPAY"}' }, 'bad_signature'],
    ['not signed at all', { unsigned: true }, 'unknown_serial'],
    ['signed under a serial we do not know', { serial: 'PUB_KEY_ID_0000000000000000000000000000' }, 'unknown_serial'],
    ['signed more than 5 minutes ago (a replay)', { timestamp: NOW_SECONDS - 301 }, 'stale'],
  ])('a SUCCESS %s is a GatewayError, never paid', async (_how, signing, verdict) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(json(200, trade(outTradeNo, 'SUCCESS'), signing));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError(`wechat response signature: ${verdict}`));
  });

  it('a 200 with no body is a GatewayError', async () => {
    server.queue(wechatAnswer(creds, 200, '', signedAt()));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat answered 200 with no body'));
  });

  it('a signed 200 that is not JSON is a GatewayError', async () => {
    server.queue(wechatAnswer(creds, 200, '<xml><return_code>SUCCESS</return_code></xml>', signedAt()));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat response is not JSON'));
  });

  it.each([
    ['a signed 500 SYSTEM_ERROR', () => error(500, 'SYSTEM_ERROR', '系统错误'), 'wechat query failed: HTTP 500 SYSTEM_ERROR'],
    ['a signed 429 FREQUENCY_LIMITED', () => error(429, 'FREQUENCY_LIMITED', '频率超限'), 'wechat query failed: HTTP 429 FREQUENCY_LIMITED'],
    ['a signed 502 whose body is not JSON', () => wechatAnswer(creds, 502, 'Bad Gateway', signedAt()), 'wechat query failed: HTTP 502'],
    ["a proxy's unsigned 502 with no body (its signature is checked first)", () => ({ status: 502, body: '' }), 'wechat response signature: unknown_serial'],
    // Only a 200 answers a query, even a signed 2xx about the trade.
    ['a signed 202 about the trade', () => json(202, trade('501T1', 'SUCCESS')), 'wechat query failed: HTTP 202'],
  ])('%s is a GatewayError', async (_what, answer, message) => {
    server.queue(answer());
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(message));
  });

  it("a proxy's unsigned 503 page is a GatewayError (its signature is checked first)", async () => {
    server.queue({ status: 503, headers: { 'Content-Type': 'text/html' }, body: '<html>503 Service Unavailable</html>' });
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat response signature: unknown_serial'));
  });

  it.each([
    ['dropped before any answer', 'drop', { code: 'ECONNRESET' }],
    // Not a partial answer: the request closes before the answer ends.
    ['cut off in the middle of its answer', 'cut', { name: 'ConnectionClosed', message: 'connection closed before the answer ended' }],
  ] as const)('a connection %s is a GatewayError', async (_how, answer, cause) => {
    server.queue(answer);
    const failure = await gateway.queryTrade(nextOutTradeNo()).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as Error).message).toMatch(/^wechat gateway unreachable: /);
    expect((failure as Error).cause).toMatchObject(cause);
  });

  it('an unreachable gateway is a GatewayError', async () => {
    // Port 1: nothing listens there, the connection is refused.
    const failure = await wechatGateway('http://127.0.0.1:1')
      .queryTrade(nextOutTradeNo())
      .catch((e: unknown) => e);
    expect(failure).toEqual(new GatewayError('wechat gateway unreachable: Error'));
    // The cause is kept for the log.
    expect((failure as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a gateway that never answers is given up after 5 s, as a GatewayError', async () => {
    jest.useFakeTimers({
      doNotFake: ['Date', 'hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval'],
    });
    try {
      server.queue('hang');
      let settled = false;
      const failure = gateway
        .queryTrade(nextOutTradeNo())
        .catch((e: unknown) => e)
        .finally(() => (settled = true));
      await server.received(1);
      jest.advanceTimersByTime(4_999);
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      jest.advanceTimersByTime(1);
      const timedOut = await failure;
      expect(timedOut).toEqual(new GatewayError('wechat gateway unreachable: TimeoutError'));
      expect((timedOut as Error).cause).toMatchObject({ name: 'TimeoutError', message: 'no answer within 5000 ms' });
    } finally {
      jest.useRealTimers();
    }
  });

  it('a gateway whose TLS certificate is not trusted is a GatewayError: verification is never switched off', async () => {
    // The merchant's self-signed certificate stands in for a certificate no authority vouches for.
    const untrusted = await startCannedGateway({ key: creds.merchant_private_key_pem, cert: creds.merchant_cert_pem });
    try {
      untrusted.queue(json(200, trade('x', 'SUCCESS')));
      await expect(wechatGateway(untrusted.url).queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat gateway unreachable: Error'));
      expect(untrusted.requests).toHaveLength(0);
    } finally {
      await untrusted.close();
    }
  });
});

describe('closeTrade', () => {
  it('a signed 204 is closed; the close names our mchid', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(wechatAnswer(creds, 204, '', signedAt()));
    await expect(gateway.closeTrade(outTradeNo)).resolves.toBeUndefined();
    expect(server.requests).toEqual([expect.objectContaining({ method: 'POST', path: `/v3/pay/transactions/out-trade-no/${outTradeNo}/close` })]);
    expect(JSON.parse(server.requests[0].body)).toEqual({ mchid: creds.mchid });
  });

  it('a signed 200 is closed too', async () => {
    server.queue(json(200, {}));
    await expect(gateway.closeTrade(nextOutTradeNo())).resolves.toBeUndefined();
  });

  it('ORDERPAID is TradeAlreadyPaid: the money arrived, the points must not be released', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(error(400, 'ORDERPAID', '订单已支付'));
    await expect(gateway.closeTrade(outTradeNo)).rejects.toEqual(new TradeAlreadyPaid(outTradeNo));
  });

  it.each([
    [400, 'ORDER_CLOSED', '订单已关闭'],
    [400, 'ORDERCLOSED', '订单已关闭'],
    [404, 'ORDER_NOT_EXIST', '订单不存在'],
    [400, 'ORDER_NOT_EXIST', '订单不存在'],
    [404, 'RESOURCE_NOT_EXISTS', '资源不存在'],
  ])('a signed %i %s counts as closed: a trade WeChat closed or never saw cannot be paid', async (status, code, message) => {
    server.queue(error(status, code, message));
    await expect(gateway.closeTrade(nextOutTradeNo())).resolves.toBeUndefined();
  });

  it.each([
    [500, 'SYSTEM_ERROR'],
    [429, 'FREQUENCY_LIMITED'],
    [400, 'PARAM_ERROR'],
  ])('a signed %i %s is a GatewayError: the trade may still be payable', async (status, code) => {
    server.queue(error(status, code, '失败'));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(`wechat close failed: HTTP ${status} ${code}`));
  });

  it.each(['ORDER_CLOSED', 'ORDER_NOT_EXIST'])('a forged %s is a GatewayError, never closed', async (code) => {
    server.queue(error(404, code, 'forged', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('wechat response signature: bad_signature'));
  });

  it('a forged ORDERPAID is a GatewayError, never TradeAlreadyPaid', async () => {
    server.queue(error(400, 'ORDERPAID', 'forged', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });

  it('a dropped connection is a GatewayError, never closed', async () => {
    server.queue('drop');
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });

  it('a 204 whose signature does not verify is a GatewayError, not closed', async () => {
    server.queue(wechatAnswer(creds, 204, '', signedAt({ signWithKeyPem: otherKeyPem })));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });
});

describe('the HTTP exchange (WechatPayApi)', () => {
  const apiOptions = () => ({
    mchid: creds.mchid,
    merchantSerial: creds.merchant_serial,
    merchantPrivateKey: createPrivateKey(creds.merchant_private_key_pem),
    gatewayUrl: server.url,
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    payPublicKeys: [{ id: creds.platform_serial }],
    now: () => NOW,
  });
  const api = () => new WechatPayApi(apiOptions());

  it('POSTs its JSON body as application/json, asking for JSON back', async () => {
    server.queue(json(200, { prepay_id: 'wx1' }));
    expect(await api().post('/v3/pay/transactions/app', { out_trade_no: '1T1' })).toEqual({ status: 200, data: { prepay_id: 'wx1' } });
    expect(server.requests[0]).toMatchObject({
      method: 'POST',
      body: '{"out_trade_no":"1T1"}',
      headers: { accept: 'application/json', 'content-type': 'application/json', authorization: expect.stringMatching(/^WECHATPAY2-SHA256-RSA2048 mchid="/) },
    });
  });

  it('GETs with no body and no content type', async () => {
    server.queue(json(200, { trade_state: 'NOTPAY' }));
    expect(await api().get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')).toEqual({ status: 200, data: { trade_state: 'NOTPAY' } });
    expect(server.requests[0]).toMatchObject({ method: 'GET', body: '', headers: { accept: 'application/json' } });
    expect(server.requests[0].headers).not.toHaveProperty('content-type');
    expect(server.requests[0].headers['content-length'] ?? '0').toBe('0');
    expect(server.requests[0].headers).not.toHaveProperty('transfer-encoding');
  });

  it.each([
    [204, '', { status: 204 }],
    [299, '{"ok":true}', { status: 299, data: { ok: true } }],
  ])('an answer of HTTP %i is a success', async (status, body, expected) => {
    server.queue(wechatAnswer(creds, status, body, signedAt()));
    expect(await api().post('/v3/pay/transactions/out-trade-no/1T1/close', {})).toEqual(expected);
  });

  it.each([
    [404, '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}', { status: 404, code: 'ORDER_NOT_EXIST', message: '订单不存在' }],
    [300, '{"code":"X","message":"y"}', { status: 300, code: 'X', message: 'y' }],
    [500, 'not json', { status: 500 }],
  ])('an answer of HTTP %i is an error with WeChat code and message, never data', async (status, body, expected) => {
    server.queue(wechatAnswer(creds, status, body, signedAt()));
    expect(await api().get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')).toEqual(expected);
  });

  it('a signed answer with a status below 200, which only a broken server sends, is an error, never data', async () => {
    // node:http cannot write such a status line, and Node's client takes one below 100 as the final answer.
    const answer = wechatAnswer(creds, 99, '{"trade_state":"SUCCESS"}', signedAt());
    if (typeof answer === 'string') throw new Error('a canned answer with a body was expected');
    const head = Object.entries(answer.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`);
    const broken = createTcpServer((socket) =>
      socket.once('data', () => socket.end(`HTTP/1.1 099 Odd\r\n${head.join('')}content-length: ${Buffer.byteLength(answer.body)}\r\n\r\n${answer.body}`)),
    );
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (broken.address() as { port: number }).port;
      const brokenApi = new WechatPayApi({ ...apiOptions(), gatewayUrl: `http://127.0.0.1:${port}` });
      expect(await brokenApi.get('/v3/pay/transactions/out-trade-no/1T1?mchid=1')).toEqual({ status: 99 });
    } finally {
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }
  });
});
