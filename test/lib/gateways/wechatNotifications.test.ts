/**
 * WeChat Pay v3 payment notifications opened by the adapter: built as WeChat builds them (signed with
 * the sandbox platform key, the transaction sealed with AES-256-GCM under the API v3 key), then bent
 * one way at a time.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { NotificationVerdict } from '../../../lib/gateways/paymentGateway';
import { WechatNotifications } from '../../../lib/gateways/wechatNotifications';
import { WechatSignatureVerifier } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { buildWechatPaymentNotification, encryptWechatResource } from '../../../scripts/sandbox/notifications';
import { wechatSignatureHeaders } from '../../../scripts/sandbox/signing';
import { wechatTransaction } from '../../support/cannedAnswers';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;

let creds: SandboxCredentials['wechat'];
let channel: WechatNotifications;

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  channel = new WechatNotifications({
    appid: creds.appid,
    mchid: creds.mchid,
    apiV3Key: creds.apiv3_key,
    verifier: WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]),
    now: () => NOW,
  });
});

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const lowerCaseHeaders = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));

/** A paid transaction as WeChat sends it in `resource`. */
const paid = (over: Record<string, unknown> = {}) => ({
  ...wechatTransaction(creds, {
    outTradeNo: '501T1',
    tradeState: 'SUCCESS',
    amountFen: 8800,
    paidAt: '2026-11-28T12:00:01.000Z',
    transactionId: '4200001234202611281234567890',
  }),
  ...over,
});
/** The same payment after a WeChat coupon: the payer paid less than the order's total. */
const paidWithCoupon = () => paid({ amount: { currency: 'CNY', payer_currency: 'CNY', payer_total: 8300, total: 8800 } });

/** The notification exactly as WeChat builds it (scripts/sandbox/notifications.ts), signed at the channel's clock. */
function genuine(transaction: object, signing: Parameters<typeof buildWechatPaymentNotification>[2] = {}) {
  const { headers, body } = buildWechatPaymentNotification(creds, transaction, { timestamp: NOW_SECONDS, ...signing });
  return { headers: lowerCaseHeaders(headers), rawBody: body };
}

/** A notification body bent by hand (its envelope or resource), then signed as WeChat signs. */
function signedBody(body: string) {
  return { headers: lowerCaseHeaders(wechatSignatureHeaders(creds, body, { timestamp: NOW_SECONDS })), rawBody: body };
}

/** A notification body around `resource`; `eventType` null leaves event_type out. */
function envelope(resource: Record<string, unknown>, eventType: string | null = 'TRANSACTION.SUCCESS') {
  return JSON.stringify({
    id: randomUUID(),
    create_time: '2026-11-28T20:00:02+08:00',
    resource_type: 'encrypt-resource',
    event_type: eventType ?? undefined,
    summary: '支付成功',
    resource,
  });
}

/** `resource` sealed as WeChat seals it; `bend` changes it after sealing. */
function sealed(plaintext: string, bend: { key?: string; associatedData?: string | null; nonce?: string } = {}) {
  const nonce = bend.nonce ?? 'fnx7ZpUjkvT3';
  const associatedData = bend.associatedData === null ? '' : (bend.associatedData ?? 'transaction');
  const resource: Record<string, unknown> = {
    original_type: 'transaction',
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext: encryptWechatResource(bend.key ?? creds.apiv3_key, plaintext, associatedData, nonce),
    nonce,
  };
  if (bend.associatedData !== null) resource.associated_data = associatedData;
  return resource;
}

describe('open', () => {
  it("a genuine TRANSACTION.SUCCESS is a payment: out_trade_no, transaction id, the order's total in fen, paid time as an instant", async () => {
    expect(await channel.open(genuine(paidWithCoupon()))).toEqual({
      kind: 'payment',
      outTradeNo: '501T1',
      payment: { channel: 'wechat', outTradeNo: '501T1', transactionId: '4200001234202611281234567890', amountFen: 8800, paidAt: '2026-11-28T12:00:01.000Z' },
    });
  });

  it('a payment without a readable success_time is dated by the clock', async () => {
    const opened = await channel.open(genuine(paid({ success_time: 'yesterday' })));
    expect(opened).toMatchObject({ kind: 'payment', payment: { paidAt: NOW.toISOString() } });
  });

  it('a resource sealed without associated_data opens with empty associated data, as WeChat allows', async () => {
    expect(await channel.open(signedBody(envelope(sealed(JSON.stringify(paid()), { associatedData: null }))))).toMatchObject({
      kind: 'payment',
      outTradeNo: '501T1',
    });
  });

  it.each([
    ['mchid', { mchid: '1900000109' }],
    ['appid', { appid: 'wx0000000000000000' }],
  ])('a genuine payment for another %s is refused as merchant_mismatch', async (_field, over) => {
    expect(await channel.open(genuine(paid(over)))).toEqual({ kind: 'refused', reason: 'merchant_mismatch', outTradeNo: '501T1' });
  });

  it.each([
    ['a JSAPI trade', { trade_type: 'JSAPI' }],
    ['a trade in another currency', { amount: { total: 8800, currency: 'USD' } }],
    ['a trade without a currency', { amount: { total: 8800 } }],
  ])('a genuine payment of %s is refused as unexpected_trade: paynow opens APP trades in CNY only', async (_what, over) => {
    expect(await channel.open(genuine(paid(over)))).toEqual({ kind: 'refused', reason: 'unexpected_trade', outTradeNo: '501T1' });
  });

  it.each(['NOTPAY', 'CLOSED', 'REFUND', 'PAYERROR'])('a genuine notification with trade_state %s is ignored: it reports no payment', async (tradeState) => {
    expect(await channel.open(genuine(paid({ trade_state: tradeState })))).toEqual({ kind: 'ignored', outTradeNo: '501T1' });
  });

  it.each([
    ['TRANSACTION.CLOSED', 'TRANSACTION.CLOSED'],
    ['no event_type', null],
  ])('a genuine notification of %s is ignored, whatever its resource says', async (_what, eventType) => {
    expect(await channel.open(signedBody(envelope(sealed(JSON.stringify(paid())), eventType)))).toEqual({ kind: 'ignored', outTradeNo: '501T1' });
  });

  it('a refund notification sent here (the merchant platform default refund URL) is read as the refund result it is', async () => {
    const refund = { mchid: creds.mchid, out_trade_no: '501T1', out_refund_no: '501T1R1', refund_status: 'SUCCESS', amount: { total: 8800, refund: 8800 } };
    expect(await channel.open(signedBody(envelope(sealed(JSON.stringify(refund)), 'REFUND.SUCCESS')))).toMatchObject({
      kind: 'refund',
      report: { outRefundNo: '501T1R1', state: 'succeeded', refundFen: 8800 },
    });
    // A payment resource under a refund event carries no refund number: refused, nothing recorded.
    expect(await channel.open(signedBody(envelope(sealed(JSON.stringify(paid())), 'REFUND.SUCCESS')))).toEqual({
      kind: 'refused',
      reason: 'missing_fields',
      outTradeNo: '501T1',
    });
  });

  it.each([
    ['no out_trade_no', { out_trade_no: undefined }],
    ['no transaction_id', { transaction_id: '' }],
    ['no amount', { amount: undefined }],
    ['an amount in yuan', { amount: { total: 88.5, currency: 'CNY' } }],
    ['an amount as text', { amount: { total: '8800', currency: 'CNY' } }],
  ])('a genuine SUCCESS with %s is refused as missing_fields', async (_what, over) => {
    expect(await channel.open(genuine(paid(over)))).toMatchObject({ kind: 'refused', reason: 'missing_fields' });
  });
});

describe('open refuses what it cannot verify or read', () => {
  it.each([
    ['signed with another key', 'bad_signature', () => genuine(paid(), { signWithKeyPem: otherKeyPem })],
    ['changed after it was signed', 'bad_signature', () => ({ ...genuine(paid()), rawBody: genuine(paid({ amount: { total: 1 } })).rawBody })],
    ['signed under a serial we do not know', 'unknown_serial', () => genuine(paid(), { serial: 'PUB_KEY_ID_0000000000000000000000000000' })],
    ['signed more than 5 minutes ago', 'stale', () => genuine(paid(), { timestamp: NOW_SECONDS - 301 })],
    ['without any Wechatpay- header', 'unknown_serial', () => ({ headers: {}, rawBody: genuine(paid()).rawBody })],
  ])('a notification %s is refused as %s', async (_how, reason, request) => {
    expect(await channel.open(request())).toEqual({ kind: 'refused', reason });
  });

  it.each([
    ['a body that is not JSON', () => 'event_type=TRANSACTION.SUCCESS'],
    ['a body that is JSON null', () => 'null'],
    ['no resource', () => JSON.stringify({ event_type: 'TRANSACTION.SUCCESS' })],
    ['another algorithm', () => envelope({ ...sealed(JSON.stringify(paid())), algorithm: 'AEAD_AES_128_GCM' })],
    ['no ciphertext', () => envelope({ ...sealed(JSON.stringify(paid())), ciphertext: '' })],
    ['no nonce', () => envelope({ ...sealed(JSON.stringify(paid())), nonce: undefined })],
  ])('a signed notification with %s is refused as malformed', async (_what, body) => {
    expect(await channel.open(signedBody(body()))).toEqual({ kind: 'refused', reason: 'malformed' });
  });

  it.each([
    ['null', 'null'],
    ['a list', JSON.stringify([{ out_trade_no: '501T1', trade_state: 'SUCCESS' }])],
    ['a number', '8800'],
    ['a string', JSON.stringify('SUCCESS')],
  ])('a signed notification whose resource decrypts, authentic, to %s is refused as malformed, not read', async (_what, plaintext) => {
    expect(await channel.open(signedBody(envelope(sealed(plaintext))))).toEqual({ kind: 'refused', reason: 'malformed' });
  });

  const flipLastByte = (resource: Record<string, unknown>) => {
    const bytes = Buffer.from(resource.ciphertext as string, 'base64');
    bytes[bytes.length - 1] ^= 1;
    return { ...resource, ciphertext: bytes.toString('base64') };
  };
  it.each([
    ['sealed under another API v3 key', () => sealed(JSON.stringify(paid()), { key: 'A'.repeat(32) })],
    ['sealed, then its tag changed', () => flipLastByte(sealed(JSON.stringify(paid())))],
    [
      'sealed, then its tag cut short',
      () => {
        const resource = sealed(JSON.stringify(paid()));
        return {
          ...resource,
          ciphertext: Buffer.from(resource.ciphertext as string, 'base64')
            .subarray(0, -4)
            .toString('base64'),
        };
      },
    ],
    ['no longer than a tag', () => ({ ...sealed('x'), ciphertext: Buffer.alloc(16).toString('base64') })],
    ['sealed, then its associated_data changed', () => ({ ...sealed(JSON.stringify(paid())), associated_data: 'refund' })],
    ['sealed text that is not JSON', () => sealed('<xml/>')],
  ])('a signed notification whose resource is %s is refused as undecryptable', async (_what, resource) => {
    expect(await channel.open(signedBody(envelope(resource())))).toEqual({ kind: 'refused', reason: 'undecryptable' });
  });
});

describe('answer', () => {
  it('a handled notification is acknowledged with 204 and no body, so WeChat stops sending it', () => {
    expect(channel.answer({ kind: 'handled' })).toEqual({ statusCode: 204, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '' });
  });

  it.each<[NotificationVerdict, number, string]>([
    [{ kind: 'retry' }, 500, '系统繁忙'],
    [{ kind: 'refused', reason: 'malformed' }, 400, '报文无法解析'],
    [{ kind: 'refused', reason: 'undecryptable' }, 400, '报文无法解析'],
    [{ kind: 'refused', reason: 'bad_signature' }, 401, '签名验证失败'],
    [{ kind: 'refused', reason: 'unknown_serial' }, 401, '签名验证失败'],
    [{ kind: 'refused', reason: 'stale' }, 401, '签名验证失败'],
    [{ kind: 'refused', reason: 'merchant_mismatch' }, 400, '商户号或应用不匹配'],
    [{ kind: 'refused', reason: 'missing_fields' }, 400, '报文缺少字段'],
    [{ kind: 'refused', reason: 'unknown_attempt' }, 404, '订单不存在'],
    [{ kind: 'refused', reason: 'amount_mismatch' }, 400, '金额或支付方式不匹配'],
    [{ kind: 'refused', reason: 'unexpected_trade' }, 400, '交易类型或币种不符'],
    [{ kind: 'refused', reason: 'unknown_refund' }, 404, '退款单不存在'],
  ])('%j is answered %i FAIL, so WeChat sends it again', (verdict, statusCode, message) => {
    const answer = channel.answer(verdict);
    expect(answer.statusCode).toBe(statusCode);
    expect(JSON.parse(answer.body)).toEqual({ code: 'FAIL', message });
  });
});
