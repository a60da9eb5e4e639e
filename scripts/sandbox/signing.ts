/**
 * The signatures both gateways use, RSA-SHA256 (Alipay calls it RSA2), base64, both ways: the sandbox
 * signs with the gateways' private keys and verifies the merchant's with its public keys.
 * What differs between the gateways is the text signed:
 * - WeChat Pay v3 answers and callbacks: `timestamp\nnonce\nbody\n`, in the `Wechatpay-*` headers;
 * - Alipay: the sorted `k=v` pairs of {@link alipaySignContent}.
 *
 * @example
 * const sign = signRsaSha256(creds.alipay.alipay_private_key_pem, alipaySignContent(fields, ['sign', 'sign_type']));
 */
import { createSign, createVerify, type KeyObject } from 'node:crypto';
import type { SandboxCredentials } from './credentials';
import { randomAlphanumeric } from './randomIds';

export const WECHAT_SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';

export function signRsaSha256(privateKeyPem: string, content: string): string {
  return createSign('RSA-SHA256').update(content, 'utf8').sign(privateKeyPem, 'base64');
}

/** False for a signature that does not verify, and for one that cannot be read as one. */
export function verifyRsaSha256(publicKey: KeyObject, content: string, signature: string): boolean {
  try {
    return createVerify('RSA-SHA256').update(content, 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

/**
 * The `Wechatpay-*` headers for one response or callback body, signed with the platform key.
 * `opts` bends them for negative tests: an old `timestamp`, an unknown `serial`, another signing key.
 */
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
    'Wechatpay-Signature': signRsaSha256(opts.signWithKeyPem ?? creds.platform_private_key_pem, `${timestamp}\n${nonce}\n${body}\n`),
    'Wechatpay-Serial': opts.serial ?? creds.platform_serial,
    'Wechatpay-Signature-Type': WECHAT_SIGNATURE_TYPE,
  };
}

/**
 * The string Alipay signs and verifies: params sorted by key, `k=v` joined with `&`, raw (not
 * URL-encoded) values, minus the keys in `exclude`. Requests leave out empty values (the SDKs'
 * `getSignContent`); asynchronous notifications are verified over every field but `sign` and
 * `sign_type`, empty ones included (`getSignCheckContentV1`, and alipay-sdk's checkNotifySignV2):
 * `keepEmpty` for those (docs/references.md).
 */
export function alipaySignContent(params: Record<string, string>, exclude: readonly string[], { keepEmpty = false } = {}): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key) && params[key] !== undefined && (keepEmpty || params[key] !== ''))
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}
