/**
 * WeChat Pay refunds through the adapter (`refund`, `queryRefund`) on canned answers, signed with the
 * sandbox platform key exactly as WeChat Pay signs (test/support/cannedAnswers.ts): what the gateway is
 * asked, every refund status it maps, the refusals that end a refund number and those worth sending
 * again, and every answer it must not vouch for.
 */
import { createPublicKey, createVerify, generateKeyPairSync } from 'node:crypto';
import { GatewayError, type RefundAnswer, type RefundRequest } from '../../../lib/gateways/paymentGateway';
import { WechatPayGateway } from '../../../lib/gateways/wechatPay';
import { WechatSignatureVerifier } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type WechatSigning, wechatAnswer, wechatErrorAnswer, wechatJsonAnswer, wechatRefund } from '../../support/cannedAnswers';
import { type CannedGateway, startCannedGateway } from '../../support/cannedGateway';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const REFUND_NOTIFY_URL = 'https://pay.example.com/notify/wechat/refund';

let creds: SandboxCredentials['wechat'];
let server: CannedGateway;
let gateway: WechatPayGateway;
let seq = 0;

/** A refund of 3000 fen out of a payment of 8800, under numbers no other test uses. */
function nextRequest(over: Partial<RefundRequest> = {}): RefundRequest {
  seq += 1;
  const outTradeNo = `501T${NOW.getTime()}${seq}`;
  return { outTradeNo, outRefundNo: `${outTradeNo}R1`, refundFen: 3000, totalFen: 8800, reason: '商品已售完', ...over };
}

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  server = await startCannedGateway();
  gateway = new WechatPayGateway({
    appid: creds.appid,
    mchid: creds.mchid,
    merchantSerial: creds.merchant_serial,
    merchantPrivateKeyPem: creds.merchant_private_key_pem,
    gatewayUrl: server.url,
    notifyUrl: 'https://pay.example.com/notify/wechat',
    refundNotifyUrl: REFUND_NOTIFY_URL,
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    payPublicKeys: [{ id: creds.platform_serial }],
    now: () => NOW,
  });
});
afterEach(() => server.reset());
afterAll(() => server.close());

/** Signed as WeChat signs, at the adapter's clock. */
const signedAt = (signing: WechatSigning = {}): WechatSigning => ({ timestamp: NOW_SECONDS, ...signing });
const json = (status: number, value: unknown, signing?: WechatSigning) => wechatJsonAnswer(creds, status, value, signedAt(signing));
const error = (status: number, code: string, message: string, signing?: WechatSigning) => wechatErrorAnswer(creds, status, code, message, signedAt(signing));
/** The refund object WeChat answers for `request`, in `status`, with `over` laid on it. */
const refundOf = (request: RefundRequest, status: string, over: Record<string, unknown> = {}) => ({
  ...wechatRefund({ outTradeNo: request.outTradeNo, outRefundNo: request.outRefundNo, status, refundFen: request.refundFen, totalFen: request.totalFen }),
  ...over,
});

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** The create and the query answer the same refund object, and the adapter reads it the same way. */
const operations: [string, (request: RefundRequest) => Promise<RefundAnswer>][] = [
  ['refund', (request) => gateway.refund(request)],
  ['queryRefund', (request) => gateway.queryRefund(request)],
];

describe('refund asks WeChat for the refund', () => {
  it('POSTs /v3/refund/domestic/refunds with its numbers, the reason, the refund notify_url and the amounts in fen (refund of total, CNY)', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    await gateway.refund(request);

    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: '/v3/refund/domestic/refunds' });
    expect(JSON.parse(server.requests[0].body)).toEqual({
      out_trade_no: request.outTradeNo,
      out_refund_no: request.outRefundNo,
      reason: '商品已售完',
      notify_url: REFUND_NOTIFY_URL,
      amount: { refund: 3000, total: 8800, currency: 'CNY' },
    });
  });

  it('signs the request with the merchant key over the very bytes it sends, under our mchid and merchant serial', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    await gateway.refund(request);

    const { headers, body } = server.requests[0];
    const authorization = String(headers.authorization);
    expect(authorization).toMatch(/^WECHATPAY2-SHA256-RSA2048 /);
    const fields = Object.fromEntries([...authorization.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    expect(fields).toMatchObject({ mchid: creds.mchid, serial_no: creds.merchant_serial });
    const signed = `POST\n/v3/refund/domestic/refunds\n${fields.timestamp}\n${fields.nonce_str}\n${body}\n`;
    expect(createVerify('RSA-SHA256').update(signed).verify(createPublicKey(creds.merchant_cert_pem), fields.signature, 'base64')).toBe(true);
  });

  it('cuts the reason to the 80 characters WeChat takes', async () => {
    const request = nextRequest({ reason: '退'.repeat(300) });
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    await gateway.refund(request);
    expect(JSON.parse(server.requests[0].body).reason).toBe('退'.repeat(80));
  });

  it('cuts between characters: an emoji at the limit is kept whole, never half', async () => {
    const request = nextRequest({ reason: `${'退'.repeat(79)}😀😀` });
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    await gateway.refund(request);
    expect(JSON.parse(server.requests[0].body).reason).toBe(`${'退'.repeat(79)}😀`);
  });
});

describe.each(operations)('%s maps each refund status WeChat signs', (_operation, call) => {
  it('SUCCESS is succeeded, refunded at success_time as an instant', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'SUCCESS', { success_time: '2026-11-28T20:00:05+08:00' })));
    expect(await call(request)).toEqual({ state: 'succeeded', refundedAt: '2026-11-28T12:00:05.000Z' });
  });

  it('PROCESSING is processing', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    expect(await call(request)).toEqual({ state: 'processing' });
  });

  it('CLOSED is failed, for good, with the status as the reason', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'CLOSED')));
    expect(await call(request)).toEqual({ state: 'failed', reason: 'CLOSED' });
  });

  it('ABNORMAL is abnormal, not failed: the money waits at WeChat until a person sends it on, and then the refund succeeds', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'ABNORMAL')));
    expect(await call(request)).toEqual({ state: 'abnormal' });
  });

  it.each(['REFUNDCLOSE', 'success', ''])('an unknown status (%j) is a GatewayError, never a guess', async (status) => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, status)));
    await expect(call(request)).rejects.toEqual(new GatewayError(`wechat refund: unknown status ${status}`));
  });

  it.each<[string, (request: RefundRequest) => Record<string, unknown>]>([
    ['another out_refund_no', (request) => ({ out_refund_no: `${request.outRefundNo}2` })],
    ['another out_trade_no', (request) => ({ out_trade_no: `${request.outTradeNo}2` })],
    ['another refund amount', (request) => ({ amount: { ...(refundOf(request, 'SUCCESS').amount as object), refund: request.refundFen + 1 } })],
    ['a refund amount as text', (request) => ({ amount: { ...(refundOf(request, 'SUCCESS').amount as object), refund: String(request.refundFen) } })],
    ['no amount', () => ({ amount: undefined })],
  ])('a signed SUCCESS with %s (a replay, a bug) is a GatewayError, never succeeded', async (_what, over) => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'SUCCESS', over(request))));
    await expect(call(request)).rejects.toEqual(new GatewayError('wechat refund answered for another refund or amount'));
  });

  it.each<[string, WechatSigning, string]>([
    ['signed with another key', { signWithKeyPem: otherKeyPem }, 'bad_signature'],
    ['changed after it was signed', { signedBody: '{"status":"PROCESSING"}' }, 'bad_signature'],
    ['not signed at all', { unsigned: true }, 'unknown_serial'],
    ['signed under a serial we do not know', { serial: 'PUB_KEY_ID_0000000000000000000000000000' }, 'unknown_serial'],
    ['signed more than 5 minutes ago (a replay)', { timestamp: NOW_SECONDS - 301 }, 'stale'],
  ])('a SUCCESS %s is a GatewayError, never succeeded', async (_how, signing, verdict) => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'SUCCESS'), signing));
    await expect(call(request)).rejects.toEqual(new GatewayError(`wechat response signature: ${verdict}`));
  });

  it('a dropped connection is a GatewayError', async () => {
    server.queue('drop');
    const failure = await call(nextRequest()).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as Error).message).toMatch(/^wechat gateway unreachable: /);
  });
});

describe('refund: what a refused create means', () => {
  it.each([
    [403, 'USER_ACCOUNT_ABNORMAL', '退款请求失败'],
    [404, 'RESOURCE_NOT_EXISTS', '订单不存在'],
    [400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额'],
    [400, 'PARAM_ERROR', '参数错误'],
    [400, 'MCH_NOT_EXISTS', '商户号不存在'],
  ])('a signed %i %s is failed for good, the code and message as the reason', async (status, code, message) => {
    server.queue(error(status, code, message));
    expect(await gateway.refund(nextRequest())).toEqual({ state: 'failed', reason: `${code} ${message}` });
  });

  it('a final refusal without a message is failed with the code alone as the reason', async () => {
    server.queue(json(400, { code: 'PARAM_ERROR' }));
    expect(await gateway.refund(nextRequest())).toEqual({ state: 'failed', reason: 'PARAM_ERROR' });
  });

  it.each([
    [403, 'NOT_ENOUGH', '基本账户余额不足，请充值后重新发起'],
    [429, 'FREQUENCY_LIMITED', '频率超限'],
    [500, 'SYSTEM_ERROR', '系统超时'],
    [403, 'NO_AUTH', '商户无权限'],
    [400, 'SOMETHING_NEW', '新的错误码'],
  ])('a signed %i %s is a GatewayError naming it: the same refund number is sent again later', async (status, code, message) => {
    server.queue(error(status, code, message));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError(`wechat refund failed: HTTP ${status} ${code}`));
  });

  it('a refusal without a code is a GatewayError with the status alone', async () => {
    server.queue(json(500, { message: '系统繁忙' }));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError('wechat refund failed: HTTP 500'));
  });

  it('a signed refusal whose body is not JSON is a GatewayError', async () => {
    server.queue(wechatAnswer(creds, 502, 'Bad Gateway', signedAt()));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError('wechat refund failed: HTTP 502'));
  });

  it.each(['PARAM_ERROR', 'RESOURCE_NOT_EXISTS'])('a forged %s is a GatewayError, never failed: failed ends the refund number', async (code) => {
    server.queue(error(400, code, 'forged', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError('wechat response signature: bad_signature'));
  });

  it("a proxy's unsigned 404 is a GatewayError, never failed", async () => {
    server.queue({ status: 404, headers: { 'Content-Type': 'text/html' }, body: '<html>404 Not Found</html>' });
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError('wechat response signature: unknown_serial'));
  });
});

describe('queryRefund', () => {
  it('GETs /v3/refund/domestic/refunds/{out_refund_no}, with no body', async () => {
    const request = nextRequest();
    server.queue(json(200, refundOf(request, 'PROCESSING')));
    await gateway.queryRefund(request);
    expect(server.requests).toEqual([expect.objectContaining({ method: 'GET', path: `/v3/refund/domestic/refunds/${request.outRefundNo}`, body: '' })]);
  });

  it('a signed 404 RESOURCE_NOT_EXISTS is not_found: WeChat never received the refund', async () => {
    server.queue(error(404, 'RESOURCE_NOT_EXISTS', '退款单不存在'));
    expect(await gateway.queryRefund(nextRequest())).toEqual({ state: 'not_found' });
  });

  it('any signed 404 is not_found, whatever its code', async () => {
    server.queue(error(404, 'ORDER_NOT_EXIST', '订单不存在'));
    expect(await gateway.queryRefund(nextRequest())).toEqual({ state: 'not_found' });
  });

  it('RESOURCE_NOT_EXISTS is not_found whatever the status it comes with', async () => {
    server.queue(error(400, 'RESOURCE_NOT_EXISTS', '退款单不存在'));
    expect(await gateway.queryRefund(nextRequest())).toEqual({ state: 'not_found' });
  });

  it('a forged RESOURCE_NOT_EXISTS is a GatewayError, never not_found', async () => {
    server.queue(error(404, 'RESOURCE_NOT_EXISTS', '退款单不存在', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.queryRefund(nextRequest())).rejects.toEqual(new GatewayError('wechat response signature: bad_signature'));
  });

  it('an unsigned 404 with no body is a GatewayError, not not_found', async () => {
    server.queue({ status: 404, body: '' });
    await expect(gateway.queryRefund(nextRequest())).rejects.toEqual(new GatewayError('wechat response signature: unknown_serial'));
  });

  it.each([
    [500, 'SYSTEM_ERROR'],
    [429, 'FREQUENCY_LIMITED'],
    [400, 'PARAM_ERROR'],
    [400, 'USER_ACCOUNT_ABNORMAL'],
  ])('a signed %i %s is a GatewayError: only a refused create is final', async (status, code) => {
    server.queue(error(status, code, '失败'));
    await expect(gateway.queryRefund(nextRequest())).rejects.toEqual(new GatewayError(`wechat refund query failed: HTTP ${status} ${code}`));
  });

  it('a 200 with no body is a GatewayError', async () => {
    server.queue(wechatAnswer(creds, 200, '', signedAt()));
    await expect(gateway.queryRefund(nextRequest())).rejects.toEqual(new GatewayError('wechat answered 200 with no body'));
  });
});
