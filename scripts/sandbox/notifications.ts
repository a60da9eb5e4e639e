/**
 * Payment and refund callbacks built the way the gateways build them, with real signatures and encryption,
 * for tests and for the local payment simulator.
 *
 * - WeChat Pay v3: JSON envelope whose `resource` is the transaction (or refund) encrypted with
 *   AEAD_AES_256_GCM under the API v3 key; headers `Wechatpay-*` signed RSA-SHA256 with the platform key over
 *   `timestamp\nnonce\nbody\n`.
 * - Alipay: form-urlencoded fields signed RSA2 with Alipay's private key over the sorted `k=v` pairs,
 *   leaving out `sign` and `sign_type` only, empty values kept (Alipay's rule for async notifications). A refund is
 *   told by the same `trade_status_sync` notification, with the refund fields added.
 *
 * @example
 * const { headers, body } = buildWechatPaymentNotification(creds.wechat, wechatTransactionResource(trade, creds.wechat));
 * await fetch(notifyUrl, { method: 'POST', headers, body });
 */
import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { fenToYuan } from '../../lib/domain/money';
import { toBeijingDateTime, toBeijingRfc3339 } from '../../lib/domain/time';
import type { SandboxCredentials } from './credentials';
import { randomAlphanumeric } from './randomIds';
import type { SandboxNotificationRecord, SandboxRefund } from './refund';
import { alipaySignContent, signRsaSha256, wechatSignatureHeaders } from './signing';
import type { SandboxTrade } from './trade';
import { wechatRefundNotificationResource } from './wechatRefund';
import { wechatTransactionResource } from './wechatTransaction';

// What a callback is made of: tests that build callbacks by hand import them from here.
export { wechatRefundNotificationResource, wechatSignatureHeaders, wechatTransactionResource };

/** How a built notification can be bent for negative tests: an old `timestamp`, an unknown `serial`, another signing key. */
export interface WechatNotificationSigning {
  timestamp?: number;
  serial?: string;
  signWithKeyPem?: string;
}

/** The event types of a WeChat refund notification, one per final refund state. */
export type WechatRefundEventType = 'REFUND.SUCCESS' | 'REFUND.ABNORMAL' | 'REFUND.CLOSED';

const REFUND_EVENTS: Record<string, { eventType: WechatRefundEventType; summary: string }> = {
  SUCCESS: { eventType: 'REFUND.SUCCESS', summary: '退款成功' },
  ABNORMAL: { eventType: 'REFUND.ABNORMAL', summary: '退款异常' },
  CLOSED: { eventType: 'REFUND.CLOSED', summary: '退款关闭' },
};

// ---- WeChat Pay ----

/** AEAD_AES_256_GCM as WeChat uses it: key = API v3 key bytes, IV = nonce bytes, output base64(ciphertext || tag). */
export function encryptWechatResource(apiv3Key: string, plaintext: string, associatedData: string, nonce: string): string {
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([ciphertext, cipher.getAuthTag()]).toString('base64');
}

/** A WeChat notification envelope around `resource`, sealed and signed as WeChat does it. */
function buildWechatNotification(
  creds: SandboxCredentials['wechat'],
  event: { eventType: string; summary: string; originalType: 'transaction' | 'refund' },
  resource: object,
  opts: WechatNotificationSigning,
): { headers: Record<string, string>; body: string } {
  const nonce = randomAlphanumeric(12);
  const associatedData = event.originalType;
  const envelope = {
    id: randomUUID(),
    create_time: toBeijingRfc3339(new Date()),
    resource_type: 'encrypt-resource',
    event_type: event.eventType,
    summary: event.summary,
    resource: {
      original_type: event.originalType,
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: encryptWechatResource(creds.apiv3_key, JSON.stringify(resource), associatedData, nonce),
      associated_data: associatedData,
      nonce,
    },
  };
  const body = JSON.stringify(envelope);
  return { headers: { 'Content-Type': 'application/json', ...wechatSignatureHeaders(creds, body, opts) }, body };
}

/**
 * A `TRANSACTION.SUCCESS` callback for `transaction` (see {@link wechatTransactionResource}).
 * `opts` bends it for negative tests: an old `timestamp`, an unknown `serial`, another signing key.
 *
 * @example
 * const n = buildWechatPaymentNotification(creds.wechat, tx, { timestamp: now - 3600 }); // stale
 */
export function buildWechatPaymentNotification(
  creds: SandboxCredentials['wechat'],
  transaction: object,
  opts: WechatNotificationSigning = {},
): { headers: Record<string, string>; body: string } {
  return buildWechatNotification(creds, { eventType: 'TRANSACTION.SUCCESS', summary: '支付成功', originalType: 'transaction' }, transaction, opts);
}

/**
 * A refund callback for `refund` (see {@link wechatRefundNotificationResource}): `event_type` REFUND.SUCCESS,
 * REFUND.ABNORMAL or REFUND.CLOSED after the resource's `refund_status` (or `opts.eventType`), `original_type`
 * and `associated_data` `refund`. `opts` also bends the signature as {@link buildWechatPaymentNotification}'s does.
 *
 * @example
 * const n = buildWechatRefundNotification(creds.wechat, { ...resource, refund_status: 'ABNORMAL' }); // REFUND.ABNORMAL
 * await fetch(notifyUrl, { method: 'POST', headers: n.headers, body: n.body });
 */
export function buildWechatRefundNotification(
  creds: SandboxCredentials['wechat'],
  refund: object,
  opts: WechatNotificationSigning & { eventType?: WechatRefundEventType } = {},
): { headers: Record<string, string>; body: string } {
  const status = (refund as { refund_status?: unknown }).refund_status;
  const byStatus = typeof status === 'string' ? REFUND_EVENTS[status] : undefined;
  const event = opts.eventType ? Object.values(REFUND_EVENTS).find((e) => e.eventType === opts.eventType)! : (byStatus ?? REFUND_EVENTS.SUCCESS);
  return buildWechatNotification(creds, { ...event, originalType: 'refund' }, refund, opts);
}

// ---- Alipay ----

/** Fields of the `TRADE_SUCCESS` async notification Alipay sends for a paid trade. */
export function alipayPaymentNotificationFields(trade: SandboxTrade, creds: SandboxCredentials['alipay']): Record<string, string> {
  const total = fenToYuan(trade.amountFen);
  return {
    gmt_create: toBeijingDateTime(new Date(trade.createdAt)),
    gmt_payment: toBeijingDateTime(new Date(trade.paidAt ?? Date.now())),
    subject: trade.description,
    buyer_id: trade.payer?.buyerId ?? '',
    buyer_logon_id: trade.payer?.buyerLogonId ?? '',
    invoice_amount: total,
    receipt_amount: total,
    buyer_pay_amount: total,
    point_amount: '0.00',
    total_amount: total,
    fund_bill_list: JSON.stringify([{ amount: total, fundChannel: 'ALIPAYACCOUNT' }]),
    out_trade_no: trade.outTradeNo,
    trade_no: trade.transactionId ?? '',
    trade_status: 'TRADE_SUCCESS',
    seller_id: creds.seller_id,
  };
}

/**
 * An Alipay async notification: `fields` over Alipay's defaults (notify_time, notify_type, notify_id,
 * app_id, auth_app_id, charset, version, sign_type, seller_id), signed with Alipay's private key.
 * `fields.sign` given by the caller is replaced. Verify with alipay-sdk's `checkNotifySignV2(fields)`.
 *
 * @example
 * const n = buildAlipayPaymentNotification(creds.alipay, { out_trade_no, trade_no, total_amount: '12.34', trade_status: 'TRADE_SUCCESS' });
 * await fetch(notifyUrl, { method: 'POST', headers: { 'Content-Type': n.contentType }, body: n.body });
 */
export function buildAlipayPaymentNotification(
  creds: SandboxCredentials['alipay'],
  fields: Record<string, string>,
): { contentType: 'application/x-www-form-urlencoded'; body: string; fields: Record<string, string> } {
  const unsigned: Record<string, string> = {
    notify_time: toBeijingDateTime(new Date()),
    notify_type: 'trade_status_sync',
    notify_id: randomBytes(17).toString('hex'),
    app_id: creds.app_id,
    auth_app_id: creds.app_id,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    seller_id: creds.seller_id,
    ...fields,
  };
  delete unsigned.sign;
  const sign = signRsaSha256(creds.alipay_private_key_pem, alipaySignContent(unsigned, ['sign', 'sign_type'], { keepEmpty: true }));
  const signed = { ...unsigned, sign };
  return { contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(signed).toString(), fields: signed };
}

/** `yyyy-MM-dd HH:mm:ss.SSS` in Beijing time: Alipay's `gmt_refund` carries milliseconds. */
function beijingDateTimeMillis(date: Date): string {
  return `${toBeijingDateTime(date)}.${String(date.getUTCMilliseconds()).padStart(3, '0')}`;
}

/**
 * Fields of the notification Alipay sends after `refund` (already SUCCESS) of `trade`, as the trade stands
 * right after it: `trade_status` TRADE_CLOSED once all of it is refunded (with `gmt_close`), TRADE_SUCCESS
 * after a partial refund; `refund_fee` the total refunded so far, `gmt_refund` the refund's time,
 * `out_biz_no` its `out_request_no`.
 */
export function alipayRefundNotificationFields(trade: SandboxTrade, refund: SandboxRefund, creds: SandboxCredentials['alipay']): Record<string, string> {
  const refundedAt = new Date(refund.succeededAt ?? Date.now());
  const closed = (trade.refundedFen ?? 0) >= trade.amountFen;
  return {
    ...alipayPaymentNotificationFields(trade, creds),
    trade_status: closed ? 'TRADE_CLOSED' : 'TRADE_SUCCESS',
    refund_fee: fenToYuan(trade.refundedFen ?? 0),
    gmt_refund: beijingDateTimeMillis(refundedAt),
    out_biz_no: refund.outRefundNo,
    ...(closed ? { gmt_close: toBeijingDateTime(refundedAt) } : {}),
  };
}

// ---- delivering callbacks ----

/** The callback the gateway would send for a paid trade, and where it would send it. */
export function buildPaymentNotificationForTrade(trade: SandboxTrade, creds: SandboxCredentials): { headers: Record<string, string>; body: string } {
  if (trade.status !== 'PAID') throw new Error(`trade ${trade.outTradeNo} is ${trade.status}, not PAID: the gateway sends no payment callback`);
  if (trade.channel === 'wechat') return buildWechatPaymentNotification(creds.wechat, wechatTransactionResource(trade, creds.wechat));
  const built = buildAlipayPaymentNotification(creds.alipay, alipayPaymentNotificationFields(trade, creds.alipay));
  return { headers: { 'Content-Type': `${built.contentType}; charset=utf-8` }, body: built.body };
}

/**
 * The callback a gateway sends after `refund` of `trade`: WeChat's REFUND.* for the refund's current state,
 * Alipay's trade_status_sync as the trade stands now. Throws for a WeChat refund still PROCESSING (WeChat
 * notifies final states only) and for an Alipay refund that is not SUCCESS.
 *
 * @example
 * const { headers, body } = buildRefundNotification(gateway.trade(no)!, gateway.refunds(no)[0], gateway.credentials);
 */
export function buildRefundNotification(
  trade: SandboxTrade,
  refund: SandboxRefund,
  creds: SandboxCredentials,
): { headers: Record<string, string>; body: string } {
  if (refund.status === 'PROCESSING' || (refund.channel === 'alipay' && refund.status !== 'SUCCESS')) {
    throw new Error(`refund ${refund.outRefundNo} is ${refund.status}: the gateway sends no refund callback yet`);
  }
  if (refund.channel === 'wechat') return buildWechatRefundNotification(creds.wechat, wechatRefundNotificationResource(refund, trade, creds.wechat));
  const built = buildAlipayPaymentNotification(creds.alipay, alipayRefundNotificationFields(trade, refund, creds.alipay));
  return { headers: { 'Content-Type': `${built.contentType}; charset=utf-8` }, body: built.body };
}

/** How long the sandbox waits for a merchant to answer a callback it sends on its own. */
const DELIVERY_TIMEOUT_MS = 5000;

/**
 * POSTs a built callback to `url` and records the merchant's answer; never throws: a connection that fails
 * (or `signal` aborting it) is recorded as `error`. The gateway would retry unless WeChat got 2xx / Alipay got
 * the text `success`; the sandbox sends once.
 */
export async function deliverNotification(
  url: string,
  notification: { headers: Record<string, string>; body: string },
  signal?: AbortSignal,
): Promise<SandboxNotificationRecord> {
  const sentAt = new Date().toISOString();
  const timeout = AbortSignal.timeout(DELIVERY_TIMEOUT_MS);
  try {
    const res = await fetch(url, { method: 'POST', ...notification, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    return { url, sentAt, status: res.status, body: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { url, sentAt, error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/** Where a callback's trade and keys come from: a running sandbox gateway is one. */
export interface PaidTradeSource {
  /** A copy of the trade, or undefined when there is none. */
  trade(outTradeNo: string): SandboxTrade | undefined;
  credentials: SandboxCredentials;
}

export interface NotificationDelivery {
  url: string;
  status: number;
  body: string;
}

/**
 * POSTs the payment callback of a paid trade to `notifyUrl`, or to the notify_url the merchant gave
 * (WeChat prepay body; Alipay order string). Returns what the merchant answered; a gateway would
 * retry unless WeChat got 2xx / Alipay got the text `success`.
 *
 * @example
 * gateway.pay(outTradeNo);
 * const delivery = await sendNotificationForPaidTrade(gateway, outTradeNo, 'http://localhost:3000/notify/wechat');
 */
export async function sendNotificationForPaidTrade(gateway: PaidTradeSource, outTradeNo: string, notifyUrl?: string): Promise<NotificationDelivery> {
  const trade = gateway.trade(outTradeNo);
  if (!trade) throw new Error(`unknown trade ${outTradeNo}`);
  const url = notifyUrl ?? trade.notifyUrl;
  if (!url) throw new Error(`trade ${outTradeNo} has no notify_url and none was given`);
  const { headers, body } = buildPaymentNotificationForTrade(trade, gateway.credentials);
  const res = await fetch(url, { method: 'POST', headers, body });
  return { url, status: res.status, body: await res.text() };
}
