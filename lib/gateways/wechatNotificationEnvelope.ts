import { createDecipheriv } from 'node:crypto';
import type { NotificationAnswer, NotificationVerdict } from './paymentGateway';
import type { WechatSignatureVerifier, WechatVerdict } from './wechatSignature';

// What WeChat Pay v3 notifications share, payments and refunds alike: the signed, encrypted envelope and the answer.

export type DecryptedWechatNotification<Resource> =
  | { ok: true; eventType: string; resource: Resource }
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
export function decryptWechatNotification<Resource>(
  headers: Record<string, string | undefined>,
  rawBody: string,
  verifier: WechatSignatureVerifier,
  apiV3Key: string,
  nowMs: number,
): DecryptedWechatNotification<Resource> {
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
  let plain: string;
  try {
    const sealed = Buffer.from(resource.ciphertext, 'base64');
    if (sealed.length <= TAG_BYTES) return { ok: false, reason: 'undecryptable' };
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(resource.nonce, 'utf8'), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    decipher.setAAD(Buffer.from(resource.associated_data ?? '', 'utf8'));
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return { ok: false, reason: 'undecryptable' };
  }
  // Authentic, yet not a resource to read (`null`, a list, a number): refused, never a crash.
  let decoded: unknown;
  try {
    decoded = JSON.parse(plain);
  } catch {
    return { ok: false, reason: 'undecryptable' };
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) return { ok: false, reason: 'malformed' };
  return { ok: true, eventType: envelope.event_type ?? '', resource: decoded as Resource };
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** The answer WeChat expects, to payment and refund notifications alike; needs no keys, so it can be given even when the keys could not be read. */
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
    case 'unknown_refund':
      return fail(404, '退款单不存在');
    case 'amount_mismatch':
      return fail(400, '金额或支付方式不匹配');
    case 'unexpected_trade':
      return fail(400, '交易类型或币种不符');
  }
}

function fail(statusCode: number, message: string): NotificationAnswer {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify({ code: 'FAIL', message }) };
}
