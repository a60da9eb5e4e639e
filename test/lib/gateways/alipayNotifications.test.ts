/**
 * Alipay asynchronous notifications opened by the adapter: form bodies built and signed as Alipay
 * builds them (RSA2 with the sandbox's Alipay key over the sorted decoded fields), checked with the
 * very call the app uses (`verifyAlipayNotification`), then bent one way at a time.
 */
import { createPublicKey, createSign, generateKeyPairSync } from 'node:crypto';
import { AlipayNotifications } from '../../../lib/gateways/alipayNotifications';
import { verifyAlipayNotification } from '../../../lib/gateways/alipaySignature';
import type { NotificationVerdict } from '../../../lib/gateways/paymentGateway';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { buildAlipayPaymentNotification } from '../../../scripts/sandbox/notifications';
import { alipaySignContent } from '../../../scripts/sandbox/signing';

const NOW = new Date('2026-11-28T12:00:00.000Z');

let creds: SandboxCredentials['alipay'];
let channel: AlipayNotifications;

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).alipay;
  const alipayPublicKey = createPublicKey(creds.alipay_public_key_pem);
  channel = new AlipayNotifications({
    appId: creds.app_id,
    sellerId: creds.seller_id,
    verify: async (fields) => verifyAlipayNotification(fields, alipayPublicKey),
    now: () => NOW,
  });
});

/**
 * The fields Alipay posts for a paid trade (scripts/sandbox/notifications.ts adds app_id, seller_id,
 * notify_id, ...); a field `over` sets to undefined is left out, as Alipay leaves out what it has not.
 */
function paidFields(over: Record<string, string | undefined> = {}): Record<string, string> {
  const fields = {
    out_trade_no: '502T1',
    trade_no: '2026112822001412345678901234',
    trade_status: 'TRADE_SUCCESS',
    total_amount: '88.00',
    receipt_amount: '88.00',
    buyer_id: '2088000000000001',
    gmt_payment: '2026-11-28 20:00:01',
    subject: '保温杯 & 杯套+1',
    ...over,
  };
  return Object.fromEntries(Object.entries(fields).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
const signed = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  rawBody: buildAlipayPaymentNotification(creds, fields).body,
});

describe('open', () => {
  it.each(['TRADE_SUCCESS', 'TRADE_FINISHED'])(
    'a genuine %s is a payment: trade_no, amount in fen, gmt_payment (Beijing) as an instant',
    async (tradeStatus) => {
      expect(await channel.open(signed(paidFields({ trade_status: tradeStatus })))).toEqual({
        kind: 'payment',
        outTradeNo: '502T1',
        payment: { channel: 'alipay', outTradeNo: '502T1', transactionId: '2026112822001412345678901234', amountFen: 8800, paidAt: '2026-11-28T12:00:01.000Z' },
      });
    },
  );

  it('a payment without gmt_payment is dated by the clock', async () => {
    expect(await channel.open(signed(paidFields({ gmt_payment: undefined })))).toMatchObject({ kind: 'payment', payment: { paidAt: NOW.toISOString() } });
  });

  it.each(['WAIT_BUYER_PAY', 'TRADE_CLOSED'])('a genuine %s is ignored: it reports no payment', async (tradeStatus) => {
    expect(await channel.open(signed(paidFields({ trade_status: tradeStatus })))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it.each([
    ['app', { app_id: '2021000000000000' }],
    ['seller', { seller_id: '2088999999999999' }],
  ])('a genuine payment for another %s is refused as merchant_mismatch', async (_whose, over) => {
    expect(await channel.open(signed(paidFields(over)))).toEqual({ kind: 'refused', reason: 'merchant_mismatch', outTradeNo: '502T1' });
  });

  it.each([
    ['no trade_no', { trade_no: undefined }],
    ['no out_trade_no', { out_trade_no: undefined }],
    ['a total_amount that is not yuan', { total_amount: '88.001' }],
    ['no total_amount', { total_amount: undefined }],
  ])('a genuine payment with %s is refused as missing_fields', async (_what, over) => {
    expect(await channel.open(signed(paidFields(over)))).toMatchObject({ kind: 'refused', reason: 'missing_fields' });
  });
});

/** Alipay's fields as given, signed with Alipay's own key under `sign_type` (RSA2: SHA-256, RSA: SHA-1). */
function signedAs(fields: Record<string, string>, signType: 'RSA2' | 'RSA') {
  const unsigned = { ...fields, sign_type: signType };
  const sign = createSign(signType === 'RSA2' ? 'RSA-SHA256' : 'RSA-SHA1')
    .update(alipaySignContent(unsigned, ['sign', 'sign_type'], { keepEmpty: true }))
    .sign(creds.alipay_private_key_pem, 'base64');
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody: new URLSearchParams({ ...unsigned, sign }).toString() };
}
const genuineFields = (over: Record<string, string | undefined> = {}) => {
  const { sign: _sign, ...fields } = buildAlipayPaymentNotification(creds, paidFields()).fields;
  const bent: Record<string, string | undefined> = { ...fields, ...over };
  return Object.fromEntries(Object.entries(bent).filter((entry): entry is [string, string] => entry[1] !== undefined));
};

describe('the app Alipay says the payment is for (auth_app_id)', () => {
  it('is ours, or left out (Alipay leaves it out where no app was authorised): a payment', async () => {
    expect(await channel.open(signedAs(genuineFields(), 'RSA2'))).toMatchObject({ kind: 'payment' });
    expect(await channel.open(signedAs(genuineFields({ auth_app_id: undefined }), 'RSA2'))).toMatchObject({ kind: 'payment' });
  });

  it("is another app, hidden by regrouping the signed text (a field named 'auth_app_id=…&buyer_id'): refused as malformed", async () => {
    const genuine = new URLSearchParams(signedAs(genuineFields({ auth_app_id: '2021000000000000' }), 'RSA2').rawBody);
    const regrouped = new URLSearchParams();
    for (const [name, value] of genuine) {
      if (name === 'auth_app_id') continue;
      if (name === 'buyer_id') regrouped.append(`auth_app_id=${genuine.get('auth_app_id')}&buyer_id`, value);
      else regrouped.append(name, value);
    }
    const body = { headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody: regrouped.toString() };
    expect(await channel.open(body)).toEqual({ kind: 'refused', reason: 'malformed' });
  });

  it('a field sent twice is refused as malformed: which of the two was signed cannot be told', async () => {
    const { rawBody, headers } = signedAs(genuineFields(), 'RSA2');
    expect(await channel.open({ headers, rawBody: `${rawBody}&trade_status=TRADE_CLOSED` })).toEqual({ kind: 'refused', reason: 'malformed' });
  });

  it('is another app: refused as merchant_mismatch, though app_id and seller are ours', async () => {
    expect(await channel.open(signedAs(genuineFields({ auth_app_id: '2021000000000000' }), 'RSA2'))).toEqual({
      kind: 'refused',
      reason: 'merchant_mismatch',
      outTradeNo: '502T1',
    });
  });
});

describe('open refuses what it cannot verify', () => {
  it("a notification signed RSA (SHA-1), even with Alipay's own key, is refused as bad_signature: only RSA2 is ours", async () => {
    expect(await channel.open(signedAs(genuineFields(), 'RSA'))).toEqual({ kind: 'refused', reason: 'bad_signature' });
  });

  const otherAlipayKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

  it('a notification signed with another key is refused as bad_signature', async () => {
    const forged = buildAlipayPaymentNotification({ ...creds, alipay_private_key_pem: otherAlipayKey }, paidFields());
    expect(await channel.open({ headers: {}, rawBody: forged.body })).toEqual({ kind: 'refused', reason: 'bad_signature' });
  });

  it('a notification changed after it was signed is refused as bad_signature', async () => {
    const body = signed(paidFields()).rawBody.replace('total_amount=88.00', 'total_amount=0.01');
    expect(body).toContain('total_amount=0.01');
    expect(await channel.open({ headers: {}, rawBody: body })).toEqual({ kind: 'refused', reason: 'bad_signature' });
  });

  it('a notification without a sign is refused as bad_signature', async () => {
    const body = new URLSearchParams(Object.entries(buildAlipayPaymentNotification(creds, paidFields()).fields).filter(([key]) => key !== 'sign')).toString();
    expect(await channel.open({ headers: {}, rawBody: body })).toEqual({ kind: 'refused', reason: 'bad_signature' });
  });
});

describe('answer', () => {
  it('a handled notification is answered "success", so Alipay stops sending it', () => {
    expect(channel.answer({ kind: 'handled' })).toEqual({ statusCode: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'success' });
  });

  it.each<NotificationVerdict>([{ kind: 'retry' }, { kind: 'refused', reason: 'bad_signature' }, { kind: 'refused', reason: 'unknown_attempt' }])(
    '%j is answered "fail", so Alipay sends it again',
    (verdict) => {
      expect(channel.answer(verdict)).toMatchObject({ statusCode: 200, body: 'fail' });
    },
  );
});
