/**
 * The notification Alipay sends to the payment's notify_url after a refund, opened by the adapter: form
 * bodies built and signed as Alipay builds them (scripts/sandbox/notifications.ts), checked with the very
 * call the app uses (`verifyAlipayNotification`). It is no new payment, and the refund's result comes from the refund call
 * and its query: genuine ones are ignored, whatever their trade_status.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { AlipayNotifications } from '../../../lib/gateways/alipayNotifications';
import { verifyAlipayNotification } from '../../../lib/gateways/alipaySignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { alipayRefundNotificationFields, buildAlipayPaymentNotification } from '../../../scripts/sandbox/notifications';
import type { SandboxRefund } from '../../../scripts/sandbox/refund';
import type { SandboxTrade } from '../../../scripts/sandbox/trade';

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

/** A trade of 88.00 yuan, paid, with `refundedFen` of it refunded by the refund 502T1R1. */
function afterRefund(refundedFen: number): Record<string, string> {
  const trade: SandboxTrade = {
    channel: 'alipay',
    outTradeNo: '502T1',
    amountFen: 8800,
    status: 'PAID',
    description: '保温杯',
    createdAt: '2026-11-28T11:59:00.000Z',
    paidAt: '2026-11-28T12:00:01.000Z',
    transactionId: '2026112822001412345678901234',
    payer: { buyerId: '2088000000000001', buyerLogonId: 'buy***@example.com' },
    refundedFen,
    request: {},
  };
  const refund: SandboxRefund = {
    channel: 'alipay',
    outTradeNo: '502T1',
    outRefundNo: '502T1R1',
    amountFen: refundedFen,
    status: 'SUCCESS',
    createdAt: '2026-11-28T12:05:00.000Z',
    succeededAt: '2026-11-28T12:05:00.320Z',
    request: {},
  };
  return alipayRefundNotificationFields(trade, refund, creds);
}
/** The fields of the notification for a plain payment: afterRefund's, without the refund fields. */
function paidFields(over: Record<string, string> = {}): Record<string, string> {
  const { refund_fee: _fee, gmt_refund: _at, out_biz_no: _no, ...fields } = afterRefund(3000);
  return { ...fields, ...over };
}
const signed = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  rawBody: buildAlipayPaymentNotification(creds, fields).body,
});

describe('open', () => {
  it('the notification after a full refund (TRADE_CLOSED, refund_fee, gmt_refund, out_biz_no) is ignored: it is no new payment', async () => {
    const fields = afterRefund(8800);
    expect(fields).toMatchObject({ trade_status: 'TRADE_CLOSED', refund_fee: '88.00', out_biz_no: '502T1R1' });
    expect(await channel.open(signed(fields))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it('the notification after a partial refund is ignored, though its trade_status still says TRADE_SUCCESS', async () => {
    const fields = afterRefund(3000);
    expect(fields).toMatchObject({ trade_status: 'TRADE_SUCCESS', refund_fee: '30.00', out_biz_no: '502T1R1' });
    expect(await channel.open(signed(fields))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it('the same payment without the refund fields is a payment (what the refund fields change)', async () => {
    expect(await channel.open(signed(paidFields()))).toMatchObject({ kind: 'payment', outTradeNo: '502T1', payment: { amountFen: 8800 } });
  });

  it.each([
    ['refund_fee', { refund_fee: '30.00' }],
    ['gmt_refund', { gmt_refund: '2026-11-28 20:05:00.320' }],
    ['out_biz_no', { out_biz_no: '502T1R1' }],
  ])('a TRADE_SUCCESS carrying %s alone is ignored', async (_field, over) => {
    expect(await channel.open(signed(paidFields(over)))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it('a TRADE_FINISHED carrying refund fields is ignored', async () => {
    expect(await channel.open(signed({ ...afterRefund(3000), trade_status: 'TRADE_FINISHED' }))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it('a TRADE_CLOSED without refund fields (a full refund told by its trade_status alone) is ignored', async () => {
    expect(await channel.open(signed(paidFields({ trade_status: 'TRADE_CLOSED' })))).toEqual({ kind: 'ignored', outTradeNo: '502T1' });
  });

  it('a refund notification for another seller is refused as merchant_mismatch, not ignored', async () => {
    expect(await channel.open(signed({ ...afterRefund(8800), seller_id: '2088999999999999' }))).toEqual({
      kind: 'refused',
      reason: 'merchant_mismatch',
      outTradeNo: '502T1',
    });
  });

  it('a refund notification signed with another key is refused as bad_signature, not ignored', async () => {
    const otherAlipayKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const forged = buildAlipayPaymentNotification({ ...creds, alipay_private_key_pem: otherAlipayKey }, afterRefund(8800));
    expect(await channel.open({ headers: {}, rawBody: forged.body })).toEqual({ kind: 'refused', reason: 'bad_signature' });
  });
});
