/**
 * Payment callbacks built the way the gateways build them, with real signatures and encryption,
 * for tests and for the local payment simulator.
 *
 * - WeChat Pay v3: JSON envelope whose `resource` is the transaction encrypted with AEAD_AES_256_GCM
 *   under the API v3 key; headers `Wechatpay-*` signed RSA-SHA256 with the platform key over
 *   `timestamp\nnonce\nbody\n`.
 * - Alipay: form-urlencoded fields signed RSA2 with Alipay's private key over the sorted `k=v` pairs,
 *   leaving out `sign`, `sign_type` and empty values (Alipay's rule for async notifications).
 *
 * @example
 * const { headers, body } = buildWechatPaymentNotification(creds.wechat, wechatTransactionResource(trade, creds.wechat));
 * await fetch(notifyUrl, { method: 'POST', headers, body });
 */
import { createCipheriv, createSign, randomBytes, randomUUID } from 'node:crypto';
import type { SandboxCredentials } from './credentials';
import { randomAlphanumeric } from './credentials';
import { fenToYuan } from '../../lib/domain/money';
import { parseGatewayTime, toBeijingDateTime, toBeijingRfc3339 } from '../../lib/domain/time';
import type { SandboxGateway, SandboxTrade } from './gateway';

// ---- time as the gateways write it: Beijing time ----

/** `2026-11-28T20:15:00+08:00`: how WeChat Pay v3 writes times (`success_time`, `create_time`). */
export const beijingRfc3339 = (date: Date = new Date()): string => toBeijingRfc3339(date);

/** `2026-11-28 20:15:00`: how Alipay writes times and expects request `timestamp`s (Beijing time). */
export const beijingDateTime = (date: Date = new Date()): string => toBeijingDateTime(date);

/** Parses Alipay's `yyyy-MM-dd HH:mm:ss` as Beijing time; undefined when malformed. */
export function parseBeijingDateTime(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(text)) return undefined;
  const iso = parseGatewayTime(text);
  return iso ? new Date(iso) : undefined;
}

/** 1234 fen -> "12.34", Alipay's amount format. */
export { fenToYuan };

// ---- WeChat Pay ----

export const WECHAT_SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';

/** Signs `timestamp\nnonce\nbody\n` the way WeChat Pay signs responses and callbacks. */
export function signWechatMessage(privateKeyPem: string, timestamp: string, nonce: string, body: string): string {
  return createSign('RSA-SHA256').update(`${timestamp}\n${nonce}\n${body}\n`, 'utf8').sign(privateKeyPem, 'base64');
}

/** The `Wechatpay-*` headers for one response or callback body. */
export function wechatSignatureHeaders(
  creds: SandboxCredentials['wechat'],
  body: string,
  opts: { timestamp?: number; serial?: string; signWithKeyPem?: string } = {},
): Record<string, string> {
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = randomAlphanumeric(32);
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signWechatMessage(opts.signWithKeyPem ?? creds.platform_private_key_pem, timestamp, nonce, body),
    'Wechatpay-Serial': opts.serial ?? creds.platform_serial,
    'Wechatpay-Signature-Type': WECHAT_SIGNATURE_TYPE,
  };
}

/**
 * The transaction object WeChat Pay v3 shows for a trade: the query answer, and the decrypted
 * `resource` of a payment callback. Keys in WeChat's (alphabetical) order; `payer`, `payer_total`,
 * `transaction_id`, `trade_type`, `success_time`, `bank_type` only once paid, as WeChat does.
 */
export function wechatTransactionResource(trade: SandboxTrade, creds: SandboxCredentials['wechat']): Record<string, unknown> {
  const paid = trade.status === 'PAID';
  const amount: Record<string, unknown> = { currency: 'CNY', payer_currency: 'CNY' };
  if (paid) amount.payer_total = trade.amountFen;
  amount.total = trade.amountFen;
  const tx: Record<string, unknown> = { amount, appid: creds.appid };
  if (trade.attach !== undefined) tx.attach = trade.attach;
  if (paid) tx.bank_type = 'OTHERS';
  tx.mchid = creds.mchid;
  tx.out_trade_no = trade.outTradeNo;
  if (paid) tx.payer = { openid: trade.payer?.openid };
  tx.promotion_detail = [];
  if (!paid) tx.scene_info = { device_id: '' };
  if (paid) tx.success_time = beijingRfc3339(new Date(trade.paidAt!));
  tx.trade_state = { UNPAID: 'NOTPAY', PAID: 'SUCCESS', CLOSED: 'CLOSED' }[trade.status];
  tx.trade_state_desc = { UNPAID: '订单未支付', PAID: '支付成功', CLOSED: '订单已关闭' }[trade.status];
  if (paid) tx.trade_type = 'APP';
  if (paid) tx.transaction_id = trade.transactionId;
  return tx;
}

/** AEAD_AES_256_GCM as WeChat uses it: key = API v3 key bytes, IV = nonce bytes, output base64(ciphertext || tag). */
export function encryptWechatResource(apiv3Key: string, plaintext: string, associatedData: string, nonce: string): string {
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([ciphertext, cipher.getAuthTag()]).toString('base64');
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
  opts: { timestamp?: number; serial?: string; signWithKeyPem?: string } = {},
): { headers: Record<string, string>; body: string } {
  const nonce = randomAlphanumeric(12);
  const associatedData = 'transaction';
  const envelope = {
    id: randomUUID(),
    create_time: beijingRfc3339(),
    resource_type: 'encrypt-resource',
    event_type: 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    resource: {
      original_type: 'transaction',
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: encryptWechatResource(creds.apiv3_key, JSON.stringify(transaction), associatedData, nonce),
      associated_data: associatedData,
      nonce,
    },
  };
  const body = JSON.stringify(envelope);
  return { headers: { 'Content-Type': 'application/json', ...wechatSignatureHeaders(creds, body, opts) }, body };
}

// ---- Alipay ----

/**
 * The string Alipay signs and verifies: non-empty params, sorted by key, `k=v` joined with `&`,
 * raw (not URL-encoded) values, minus the keys in `exclude`.
 */
export function alipaySignContent(params: Record<string, string>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key) && params[key] !== undefined && params[key] !== '')
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

/** RSA2 (SHA256withRSA), base64. */
export function signAlipay(privateKeyPem: string, content: string): string {
  return createSign('RSA-SHA256').update(content, 'utf8').sign(privateKeyPem, 'base64');
}

/** Fields of the `TRADE_SUCCESS` async notification Alipay sends for a paid trade. */
export function alipayPaymentNotificationFields(trade: SandboxTrade, creds: SandboxCredentials['alipay']): Record<string, string> {
  const total = fenToYuan(trade.amountFen);
  return {
    gmt_create: beijingDateTime(new Date(trade.createdAt)),
    gmt_payment: beijingDateTime(new Date(trade.paidAt ?? Date.now())),
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
    notify_time: beijingDateTime(),
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
  const sign = signAlipay(creds.alipay_private_key_pem, alipaySignContent(unsigned, ['sign', 'sign_type']));
  const signed = { ...unsigned, sign };
  return { contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(signed).toString(), fields: signed };
}

// ---- delivering callbacks ----

/** The callback the gateway would send for a paid trade, and where it would send it. */
export function buildPaymentNotificationForTrade(
  trade: SandboxTrade,
  creds: SandboxCredentials,
): { headers: Record<string, string>; body: string } {
  if (trade.status !== 'PAID') throw new Error(`trade ${trade.outTradeNo} is ${trade.status}, not PAID: the gateway sends no payment callback`);
  if (trade.channel === 'wechat') return buildWechatPaymentNotification(creds.wechat, wechatTransactionResource(trade, creds.wechat));
  const built = buildAlipayPaymentNotification(creds.alipay, alipayPaymentNotificationFields(trade, creds.alipay));
  return { headers: { 'Content-Type': `${built.contentType}; charset=utf-8` }, body: built.body };
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
export async function sendNotificationForPaidTrade(
  gateway: Pick<SandboxGateway, 'trade' | 'credentials'>,
  outTradeNo: string,
  notifyUrl?: string,
): Promise<NotificationDelivery> {
  const trade = gateway.trade(outTradeNo);
  if (!trade) throw new Error(`unknown trade ${outTradeNo}`);
  const url = notifyUrl ?? trade.notifyUrl;
  if (!url) throw new Error(`trade ${outTradeNo} has no notify_url and none was given`);
  const { headers, body } = buildPaymentNotificationForTrade(trade, gateway.credentials);
  const res = await fetch(url, { method: 'POST', headers, body });
  return { url, status: res.status, body: await res.text() };
}
