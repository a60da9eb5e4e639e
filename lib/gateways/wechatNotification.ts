import { createDecipheriv } from 'node:crypto';
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

export type OpenedWechatNotification =
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
export function openWechatNotification(
  headers: Record<string, string | undefined>,
  rawBody: string,
  verifier: WechatSignatureVerifier,
  apiV3Key: string,
  nowMs = Date.now(),
): OpenedWechatNotification {
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
  const resource = envelope.resource;
  if (!resource || resource.algorithm !== 'AEAD_AES_256_GCM' || !resource.ciphertext || !resource.nonce) return { ok: false, reason: 'malformed' };
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
