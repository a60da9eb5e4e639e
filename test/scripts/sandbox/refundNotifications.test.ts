/**
 * Refund notifications as the gateways build them (scripts/sandbox/notifications.ts), checked with what a
 * merchant has: the platform public key and API v3 key (WeChat), alipay-sdk's checkNotifySignV2 (Alipay).
 */
import { generateKeyPairSync } from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import {
  alipayRefundNotificationFields,
  buildRefundNotification,
  buildWechatRefundNotification,
  deliverNotification,
  wechatRefundNotificationResource,
} from '../../../scripts/sandbox/notifications';
import type { SandboxRefund } from '../../../scripts/sandbox/refund';
import type { SandboxTrade } from '../../../scripts/sandbox/trade';
import { type RecordingMerchant, startRecordingMerchant } from '../../support/sandboxMerchant';
import { decryptWechatResource, wechatSignatureValid } from '../../support/sandboxWechatClient';

let creds: SandboxCredentials;
let alipay: AlipaySdk;
let merchant: RecordingMerchant;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  alipay = new AlipaySdk({ appId: creds.alipay.app_id, privateKey: creds.alipay.app_private_key_pem, alipayPublicKey: creds.alipay.alipay_public_key_pem });
  merchant = await startRecordingMerchant();
});
afterAll(async () => {
  await merchant.close();
});

const trade = (channel: SandboxTrade['channel'], extra: Partial<SandboxTrade> = {}): SandboxTrade => ({
  channel,
  outTradeNo: 'RN_TRADE_1',
  amountFen: 1000,
  status: 'PAID',
  description: '测试',
  notifyUrl: 'https://paynow.example.com/notify',
  createdAt: '2026-01-01T00:00:00.000Z',
  paidAt: '2026-01-01T00:01:00.000Z',
  transactionId: channel === 'wechat' ? '4200000001202601010000000001' : '2026010122001000000000000001',
  payer: channel === 'wechat' ? { openid: 'o123' } : { buyerId: '2088000000000001', buyerLogonId: '138****0000' },
  request: {},
  ...extra,
});

const refund = (channel: SandboxRefund['channel'], extra: Partial<SandboxRefund> = {}): SandboxRefund => ({
  channel,
  outTradeNo: 'RN_TRADE_1',
  outRefundNo: 'RN_REFUND_1',
  ...(channel === 'wechat' ? { refundId: '50000000012026010100000000001' } : {}),
  amountFen: 400,
  status: 'SUCCESS',
  createdAt: '2026-01-02T00:00:00.000Z',
  succeededAt: '2026-01-02T00:00:00.045Z',
  request: {},
  ...extra,
});

describe('buildWechatRefundNotification', () => {
  it('names the event after refund_status, seals the resource with associated_data "refund" and signs with the platform key', () => {
    for (const [status, eventType, summary] of [
      ['SUCCESS', 'REFUND.SUCCESS', '退款成功'],
      ['ABNORMAL', 'REFUND.ABNORMAL', '退款异常'],
      ['CLOSED', 'REFUND.CLOSED', '退款关闭'],
    ]) {
      const resource = wechatRefundNotificationResource(refund('wechat', { status: status as SandboxRefund['status'] }), trade('wechat'), creds.wechat);
      const { headers, body } = buildWechatRefundNotification(creds.wechat, resource);
      expect(headers['Content-Type']).toBe('application/json');
      expect(wechatSignatureValid(creds.wechat, headers, body)).toBe(true);
      const envelope = JSON.parse(body);
      expect(envelope).toMatchObject({
        resource_type: 'encrypt-resource',
        event_type: eventType,
        summary,
        resource: { original_type: 'refund', associated_data: 'refund' },
      });
      expect(JSON.parse(decryptWechatResource(creds.wechat.apiv3_key, envelope.resource))).toEqual(resource);
      expect(() => decryptWechatResource(creds.wechat.apiv3_key, { ...envelope.resource, associated_data: 'transaction' })).toThrow(/authenticate/);
    }
  });

  it('gives success_time (Beijing RFC 3339) for SUCCESS only', () => {
    expect(wechatRefundNotificationResource(refund('wechat'), trade('wechat'), creds.wechat)).toMatchObject({
      refund_status: 'SUCCESS',
      success_time: '2026-01-02T08:00:00+08:00',
      amount: { total: 1000, refund: 400, payer_total: 1000, payer_refund: 400 },
    });
    expect(wechatRefundNotificationResource(refund('wechat', { status: 'CLOSED' }), trade('wechat'), creds.wechat).success_time).toBeUndefined();
  });

  it('bends for negative tests: an event type of its own, another signing key, an old timestamp, another serial', () => {
    const resource = { out_refund_no: 'X', refund_status: 'SUCCESS' };
    expect(JSON.parse(buildWechatRefundNotification(creds.wechat, resource, { eventType: 'REFUND.CLOSED' }).body).event_type).toBe('REFUND.CLOSED');
    expect(JSON.parse(buildWechatRefundNotification(creds.wechat, { out_refund_no: 'X' }).body).event_type).toBe('REFUND.SUCCESS');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = buildWechatRefundNotification(creds.wechat, resource, { signWithKeyPem: other });
    expect(wechatSignatureValid(creds.wechat, forged.headers, forged.body)).toBe(false);
    const stale = buildWechatRefundNotification(creds.wechat, resource, { timestamp: 1_700_000_000, serial: 'PUB_KEY_ID_0000' });
    expect(stale.headers).toMatchObject({ 'Wechatpay-Timestamp': '1700000000', 'Wechatpay-Serial': 'PUB_KEY_ID_0000' });
  });
});

describe('alipayRefundNotificationFields', () => {
  it('tells a partial refund as TRADE_SUCCESS with the refund fields, signed so that checkNotifySignV2 accepts it', () => {
    const fields = alipayRefundNotificationFields(trade('alipay', { refundedFen: 400 }), refund('alipay'), creds.alipay);
    expect(fields).toMatchObject({
      out_trade_no: 'RN_TRADE_1',
      trade_no: '2026010122001000000000000001',
      total_amount: '10.00',
      trade_status: 'TRADE_SUCCESS',
      refund_fee: '4.00',
      gmt_refund: '2026-01-02 08:00:00.045',
      out_biz_no: 'RN_REFUND_1',
      gmt_payment: '2026-01-01 08:01:00',
    });
    expect(fields.gmt_close).toBeUndefined();
    const built = buildRefundNotification(trade('alipay', { refundedFen: 400 }), refund('alipay'), creds);
    expect(built.headers['Content-Type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(alipay.checkNotifySignV2(Object.fromEntries(new URLSearchParams(built.body)))).toBe(true);
  });

  it('tells the refund that completes the trade as TRADE_CLOSED, with gmt_close', () => {
    const fields = alipayRefundNotificationFields(trade('alipay', { refundedFen: 1000 }), refund('alipay', { amountFen: 600 }), creds.alipay);
    expect(fields).toMatchObject({ trade_status: 'TRADE_CLOSED', refund_fee: '10.00', gmt_close: '2026-01-02 08:00:00' });
  });
});

describe('buildRefundNotification', () => {
  it('builds the WeChat callback for a settled refund, and refuses one still PROCESSING or an Alipay refund that did not succeed', () => {
    const { headers, body } = buildRefundNotification(trade('wechat'), refund('wechat', { status: 'ABNORMAL' }), creds);
    expect(wechatSignatureValid(creds.wechat, headers, body)).toBe(true);
    expect(JSON.parse(body).event_type).toBe('REFUND.ABNORMAL');
    expect(() => buildRefundNotification(trade('wechat'), refund('wechat', { status: 'PROCESSING' }), creds)).toThrow(/PROCESSING/);
    expect(() => buildRefundNotification(trade('alipay'), refund('alipay', { status: 'CLOSED' }), creds)).toThrow(/CLOSED/);
  });
});

describe('deliverNotification', () => {
  it("records the merchant's answer, or the connection's failure, without throwing", async () => {
    const notification = { headers: { 'Content-Type': 'text/plain' }, body: 'hello' };
    expect(await deliverNotification(`${merchant.url}/alipay/x`, notification)).toEqual({
      url: `${merchant.url}/alipay/x`,
      sentAt: expect.any(String),
      status: 200,
      body: 'success',
    });
    expect(merchant.receivedOn('/alipay/x')).toEqual([expect.objectContaining({ method: 'POST', body: 'hello' })]);
    const gone = await startRecordingMerchant();
    await gone.close();
    expect(await deliverNotification(`${gone.url}/refund`, notification)).toEqual({
      url: `${gone.url}/refund`,
      sentAt: expect.any(String),
      error: 'ECONNREFUSED',
    });
    expect((await deliverNotification('http://127.0.0.1:1/refund', notification)).error).toBe('bad port');
    const aborted = new AbortController();
    aborted.abort();
    expect((await deliverNotification(`${merchant.url}/wechat`, notification, aborted.signal)).error).toEqual(expect.any(String));
  });
});
