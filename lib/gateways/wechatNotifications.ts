import { createDecipheriv } from 'node:crypto';
import { type Clock, parseGatewayTime } from '../domain/time';
import type { GatewayRequest, NotificationAnswer, NotificationChannel, NotificationVerdict, OpenedNotification } from './paymentGateway';
import type { WechatSignatureVerifier, WechatVerdict } from './wechatSignature';

/** The decrypted `resource` of a WeChat Pay v3 payment notification (the fields we use). */
export interface WechatTransaction {
  appid?: string;
  mchid?: string;
  out_trade_no?: string;
  transaction_id?: string;
  trade_state?: string;
  success_time?: string;
  amount?: { total?: number; payer_total?: number; currency?: string };
}

export type DecryptedWechatNotification =
  | { ok: true; eventType: string; transaction: WechatTransaction }
  | { ok: false; reason: Exclude<WechatVerdict, 'ok'> | 'malformed' | 'undecryptable' };

/** WeChat's tag is the full 16 bytes; a shorter one would be easier to forge. */
const TAG_BYTES = 16;

interface NotificationEnvelope {
  event_type?: string;
  resource?: { algorithm?: string; ciphertext?: string; associated_data?: string; nonce?: string };
}

/**
 * Verifies a notification's signature (and freshness) on the raw body, then decrypts its resource
 * with AEAD_AES_256_GCM under the API v3 key, authenticating the tag: a changed byte anywhere fails.
 * Done with node:crypto because the SDK's helpers fetch certificates over the network and skip the tag.
 */
export function decryptWechatNotification(
  headers: Record<string, string | undefined>,
  rawBody: string,
  verifier: WechatSignatureVerifier,
  apiV3Key: string,
  nowMs: number,
): DecryptedWechatNotification {
  const verdict = verifier.verify(
    {
      timestamp: headers['wechatpay-timestamp'] ?? '',
      nonce: headers['wechatpay-nonce'] ?? '',
      signature: headers['wechatpay-signature'] ?? '',
      serial: headers['wechatpay-serial'] ?? '',
      body: rawBody,
    },
    nowMs,
  );
  if (verdict !== 'ok') return { ok: false, reason: verdict };

  let envelope: NotificationEnvelope;
  try {
    envelope = JSON.parse(rawBody) as NotificationEnvelope;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const resource = envelope?.resource;
  if (resource?.algorithm !== 'AEAD_AES_256_GCM' || !resource.ciphertext || !resource.nonce) return { ok: false, reason: 'malformed' };
  try {
    const sealed = Buffer.from(resource.ciphertext, 'base64');
    if (sealed.length <= TAG_BYTES) return { ok: false, reason: 'undecryptable' };
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(resource.nonce, 'utf8'), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    decipher.setAAD(Buffer.from(resource.associated_data ?? '', 'utf8'));
    const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    return { ok: true, eventType: envelope.event_type ?? '', transaction: JSON.parse(plain) as WechatTransaction };
  } catch {
    return { ok: false, reason: 'undecryptable' };
  }
}

export interface WechatNotificationsOptions {
  appid: string;
  mchid: string;
  apiV3Key: string;
  verifier: WechatSignatureVerifier;
  now: Clock;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/**
 * WeChat Pay v3 payment notifications (`POST /notify/wechat`): verified and decrypted with
 * node:crypto, then they must name our merchant and app. Only `TRANSACTION.SUCCESS` with trade_state
 * SUCCESS is a payment; other events are acknowledged and change nothing.
 */
export class WechatNotifications implements NotificationChannel {
  readonly channel = 'wechat' as const;

  constructor(private readonly options: WechatNotificationsOptions) {}

  async open({ headers, rawBody }: GatewayRequest): Promise<OpenedNotification> {
    const { appid, mchid, apiV3Key, verifier, now } = this.options;
    const opened = decryptWechatNotification(headers, rawBody, verifier, apiV3Key, now().getTime());
    if (!opened.ok) return { kind: 'refused', reason: opened.reason };
    const t = opened.transaction;
    if (t.mchid !== mchid || t.appid !== appid) return { kind: 'refused', reason: 'merchant_mismatch', outTradeNo: t.out_trade_no };
    if (opened.eventType !== 'TRANSACTION.SUCCESS' || t.trade_state !== 'SUCCESS') return { kind: 'ignored', outTradeNo: t.out_trade_no };
    const amountFen = t.amount?.total;
    if (!t.out_trade_no || !t.transaction_id || amountFen === undefined || !Number.isSafeInteger(amountFen)) {
      return { kind: 'refused', reason: 'missing_fields', outTradeNo: t.out_trade_no };
    }
    return {
      kind: 'payment',
      outTradeNo: t.out_trade_no,
      payment: {
        channel: 'wechat',
        outTradeNo: t.out_trade_no,
        transactionId: t.transaction_id,
        amountFen,
        paidAt: parseGatewayTime(t.success_time) ?? now().toISOString(),
      },
    };
  }

  /** 204 when handled; anything else, with `{"code":"FAIL"}`, makes WeChat send it again. */
  answer(verdict: NotificationVerdict): NotificationAnswer {
    return wechatNotificationAnswer(verdict);
  }
}

/** The answer WeChat expects; needs no keys, so it can be given even when the keys could not be read. */
export function wechatNotificationAnswer(verdict: NotificationVerdict): NotificationAnswer {
  if (verdict.kind === 'handled') return { statusCode: 204, headers: JSON_HEADERS, body: '' };
  if (verdict.kind === 'retry') return fail(500, '系统繁忙');
  switch (verdict.reason) {
    case 'malformed':
    case 'undecryptable':
      return fail(400, '报文无法解析');
    case 'bad_signature':
    case 'unknown_serial':
    case 'stale':
      return fail(401, '签名验证失败');
    case 'merchant_mismatch':
      return fail(400, '商户号或应用不匹配');
    case 'missing_fields':
      return fail(400, '报文缺少字段');
    case 'unknown_attempt':
      return fail(404, '订单不存在');
    case 'amount_mismatch':
      return fail(400, '金额或支付方式不匹配');
  }
}

function fail(statusCode: number, message: string): NotificationAnswer {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify({ code: 'FAIL', message }) };
}
