/**
 * WeChat Pay v3 refund notifications opened by the adapter: built as WeChat builds them (signed with the
 * sandbox platform key, the refund sealed with AES-256-GCM under the API v3 key, event_type after its
 * refund_status: scripts/sandbox/notifications.ts), then bent one way at a time.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { NotificationVerdict } from '../../../lib/gateways/paymentGateway';
import { openRefundResource, WechatRefundNotifications } from '../../../lib/gateways/wechatRefundNotifications';
import { WechatSignatureVerifier } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { buildWechatRefundNotification, encryptWechatResource, type WechatRefundEventType } from '../../../scripts/sandbox/notifications';
import { wechatSignatureHeaders } from '../../../scripts/sandbox/signing';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;

let creds: SandboxCredentials['wechat'];
let channel: WechatRefundNotifications;

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  channel = new WechatRefundNotifications({
    mchid: creds.mchid,
    apiV3Key: creds.apiv3_key,
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    now: () => NOW,
  });
});

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const lowerCaseHeaders = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));

/**
 * A refund of 3000 fen out of a payment of 8800 as WeChat sends it in `resource`, in the order of WeChat's
 * own example; a field `over` sets to undefined is left out, as WeChat leaves out what it has not.
 */
const refunded = (over: Record<string, unknown> = {}) => ({
  mchid: creds.mchid,
  out_trade_no: '501T1',
  transaction_id: '4200001234202611281234567890',
  out_refund_no: '501T1R1',
  refund_id: '50000000382019052709732678859',
  refund_status: 'SUCCESS',
  success_time: '2026-11-28T20:00:05+08:00',
  user_received_account: '支付用户零钱',
  amount: { total: 8800, refund: 3000, payer_total: 8800, payer_refund: 3000 },
  ...over,
});

/** The notification exactly as WeChat builds it, signed at the channel's clock; its event_type follows refund_status unless given. */
function genuine(refund: object, signing: Parameters<typeof buildWechatRefundNotification>[2] = {}) {
  const { headers, body } = buildWechatRefundNotification(creds, refund, { timestamp: NOW_SECONDS, ...signing });
  return { headers: lowerCaseHeaders(headers), rawBody: body };
}
const genuineAs = (eventType: WechatRefundEventType, refund: object) => genuine(refund, { eventType });

/** A notification body bent by hand (its envelope or resource), then signed as WeChat signs. */
function signedBody(body: string) {
  return { headers: lowerCaseHeaders(wechatSignatureHeaders(creds, body, { timestamp: NOW_SECONDS })), rawBody: body };
}

/** A notification body around `resource`; `eventType` null leaves event_type out. */
function envelope(resource: Record<string, unknown>, eventType: string | null = 'REFUND.SUCCESS') {
  return JSON.stringify({
    id: randomUUID(),
    create_time: '2026-11-28T20:00:06+08:00',
    resource_type: 'encrypt-resource',
    event_type: eventType ?? undefined,
    summary: '退款成功',
    resource,
  });
}

/** `resource` sealed as WeChat seals a refund; `key` seals it under another key. */
function sealed(plaintext: string, key = creds.apiv3_key) {
  const nonce = 'fnx7ZpUjkvT3';
  return {
    original_type: 'refund',
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext: encryptWechatResource(key, plaintext, 'refund', nonce),
    associated_data: 'refund',
    nonce,
  };
}

describe('open', () => {
  it("a genuine REFUND.SUCCESS is the refund's success: its numbers, the refund in fen, refunded at success_time as an instant", async () => {
    expect(await channel.open(genuine(refunded()))).toEqual({
      kind: 'refund',
      outTradeNo: '501T1',
      report: {
        channel: 'wechat',
        outRefundNo: '501T1R1',
        outTradeNo: '501T1',
        refundFen: 3000,
        state: 'succeeded',
        refundedAt: '2026-11-28T12:00:05.000Z',
        failureReason: undefined,
      },
    });
  });

  it('a success without a readable success_time is left undated', async () => {
    const opened = await channel.open(genuine(refunded({ success_time: 'yesterday' })));
    expect(opened).toMatchObject({ kind: 'refund', report: { state: 'succeeded' } });
    expect((opened as { report: { refundedAt?: string } }).report.refundedAt).toBeUndefined();
  });

  it('a genuine REFUND.CLOSED is the refund failed for good, its refund_status as the reason, undated whatever success_time it carries', async () => {
    expect(await channel.open(genuineAs('REFUND.CLOSED', refunded({ refund_status: 'CLOSED' })))).toEqual({
      kind: 'refund',
      outTradeNo: '501T1',
      report: {
        channel: 'wechat',
        outRefundNo: '501T1R1',
        outTradeNo: '501T1',
        refundFen: 3000,
        state: 'failed',
        refundedAt: undefined,
        failureReason: 'CLOSED',
      },
    });
  });

  it('a genuine REFUND.ABNORMAL is the refund abnormal, not failed (a person sends it on, then it succeeds): no reason, undated', async () => {
    expect(await channel.open(genuineAs('REFUND.ABNORMAL', refunded({ refund_status: 'ABNORMAL' })))).toEqual({
      kind: 'refund',
      outTradeNo: '501T1',
      report: {
        channel: 'wechat',
        outRefundNo: '501T1R1',
        outTradeNo: '501T1',
        refundFen: 3000,
        state: 'abnormal',
        refundedAt: undefined,
        failureReason: undefined,
      },
    });
  });

  it('a failure whose resource carries no refund_status takes the event as its reason', async () => {
    expect(await channel.open(genuineAs('REFUND.CLOSED', refunded({ refund_status: undefined, success_time: undefined })))).toMatchObject({
      kind: 'refund',
      report: { state: 'failed', failureReason: 'REFUND.CLOSED' },
    });
  });

  it.each([
    ['another mchid', { mchid: '1900000109' }],
    ['no mchid', { mchid: undefined }],
  ])('a genuine refund for %s is refused as merchant_mismatch', async (_what, over) => {
    expect(await channel.open(genuine(refunded(over)))).toEqual({ kind: 'refused', reason: 'merchant_mismatch', outTradeNo: '501T1' });
  });

  it.each([
    ['TRANSACTION.SUCCESS', 'TRANSACTION.SUCCESS'],
    ['REFUND.PROCESSING', 'REFUND.PROCESSING'],
    // Names every object has: a lookup must not find them.
    ['toString', 'toString'],
    ['constructor', 'constructor'],
    ['no event_type', null],
  ])('a genuine notification of %s is ignored, whatever its resource says', async (_what, eventType) => {
    expect(await channel.open(signedBody(envelope(sealed(JSON.stringify(refunded())), eventType)))).toEqual({ kind: 'ignored', outTradeNo: '501T1' });
  });

  it.each([
    ['no out_trade_no', { out_trade_no: undefined }],
    ['no out_refund_no', { out_refund_no: '' }],
    ['no amount', { amount: undefined }],
    ['no refund amount', { amount: { total: 8800, payer_total: 8800 } }],
    ['a refund amount in yuan', { amount: { total: 8800, refund: 30.5 } }],
    ['a refund amount as text', { amount: { total: 8800, refund: '3000' } }],
  ])('a genuine REFUND.SUCCESS with %s is refused as missing_fields', async (_what, over) => {
    expect(await channel.open(genuine(refunded(over)))).toMatchObject({ kind: 'refused', reason: 'missing_fields' });
  });

  it.each<[WechatRefundEventType, string | undefined]>([
    ['REFUND.SUCCESS', 'ABNORMAL'],
    ['REFUND.SUCCESS', 'PROCESSING'],
    ['REFUND.SUCCESS', undefined],
    ['REFUND.ABNORMAL', 'SUCCESS'],
    ['REFUND.ABNORMAL', 'CLOSED'],
    ['REFUND.ABNORMAL', undefined],
    ['REFUND.CLOSED', 'SUCCESS'],
    ['REFUND.CLOSED', 'ABNORMAL'],
  ])('a genuine %s whose refund_status is %s (they disagree) is refused as missing_fields', async (eventType, status) => {
    expect(await channel.open(genuineAs(eventType, refunded({ refund_status: status })))).toEqual({
      kind: 'refused',
      reason: 'missing_fields',
      outTradeNo: '501T1',
    });
  });
});

describe('open refuses what it cannot verify or read', () => {
  it.each([
    ['signed with another key', 'bad_signature', () => genuine(refunded(), { signWithKeyPem: otherKeyPem })],
    ['changed after it was signed', 'bad_signature', () => ({ ...genuine(refunded()), rawBody: genuine(refunded({ amount: { refund: 8800 } })).rawBody })],
    ['signed under a serial we do not know', 'unknown_serial', () => genuine(refunded(), { serial: 'PUB_KEY_ID_0000000000000000000000000000' })],
    ['signed more than 5 minutes ago', 'stale', () => genuine(refunded(), { timestamp: NOW_SECONDS - 301 })],
    ['without any Wechatpay- header', 'unknown_serial', () => ({ headers: {}, rawBody: genuine(refunded()).rawBody })],
  ])('a notification %s is refused as %s', async (_how, reason, request) => {
    expect(await channel.open(request())).toEqual({ kind: 'refused', reason });
  });

  it.each([
    ['a body that is not JSON', () => 'event_type=REFUND.SUCCESS'],
    ['no resource', () => JSON.stringify({ event_type: 'REFUND.SUCCESS' })],
    ['another algorithm', () => envelope({ ...sealed(JSON.stringify(refunded())), algorithm: 'AEAD_AES_128_GCM' })],
  ])('a signed notification with %s is refused as malformed', async (_what, body) => {
    expect(await channel.open(signedBody(body()))).toEqual({ kind: 'refused', reason: 'malformed' });
  });

  it.each([
    ['sealed under another API v3 key', () => sealed(JSON.stringify(refunded()), 'A'.repeat(32))],
    ['sealed as a transaction (other associated_data)', () => ({ ...sealed(JSON.stringify(refunded())), associated_data: 'transaction' })],
    ['sealed text that is not JSON', () => sealed('<xml/>')],
  ])('a signed notification whose resource is %s is refused as undecryptable', async (_what, resource) => {
    expect(await channel.open(signedBody(envelope(resource())))).toEqual({ kind: 'refused', reason: 'undecryptable' });
  });
});

describe('openRefundResource', () => {
  it('reads a decrypted resource against the mchid it is given', () => {
    expect(openRefundResource('REFUND.SUCCESS', refunded({ mchid: '1900000109' }), '1900000109')).toMatchObject({ kind: 'refund', outTradeNo: '501T1' });
    expect(openRefundResource('REFUND.SUCCESS', refunded(), '1900000109')).toEqual({ kind: 'refused', reason: 'merchant_mismatch', outTradeNo: '501T1' });
  });
});

describe('answer', () => {
  it('a handled notification is acknowledged with 204 and no body, so WeChat stops sending it', () => {
    expect(channel.answer({ kind: 'handled' })).toEqual({ statusCode: 204, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '' });
  });

  it.each<[NotificationVerdict, number, string]>([
    [{ kind: 'retry' }, 500, '系统繁忙'],
    [{ kind: 'refused', reason: 'unknown_refund' }, 404, '退款单不存在'],
    [{ kind: 'refused', reason: 'amount_mismatch' }, 400, '金额或支付方式不匹配'],
    [{ kind: 'refused', reason: 'missing_fields' }, 400, '报文缺少字段'],
    [{ kind: 'refused', reason: 'merchant_mismatch' }, 400, '商户号或应用不匹配'],
    [{ kind: 'refused', reason: 'bad_signature' }, 401, '签名验证失败'],
  ])('%j is answered %i FAIL, so WeChat sends it again', (verdict, statusCode, message) => {
    const answer = channel.answer(verdict);
    expect(answer.statusCode).toBe(statusCode);
    expect(JSON.parse(answer.body)).toEqual({ code: 'FAIL', message });
  });
});
