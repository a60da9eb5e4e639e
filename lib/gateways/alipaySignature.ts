import { createVerify, type KeyObject } from 'node:crypto';

/**
 * Alipay's signature of an asynchronous notification, checked with node:crypto so that the notify path
 * never loads alipay-sdk. The signed text is every field, sorted by name, as `name=value` joined by `&`,
 * values as decoded once from the form, empty values included, without `sign` and `sign_type`
 * (Alipay's SDKs' `getSignCheckContentV1`; docs/references.md). alipay-sdk's `checkNotifySignV2` also
 * accepts the same text with `sign_type` kept (the SDKs' `rsaCheckV2`): so does this. RSA2 only: the
 * caller refuses any other `sign_type` first.
 */
export function verifyAlipayNotification(fields: Record<string, string>, alipayPublicKey: KeyObject): boolean {
  const sign = fields.sign;
  if (!sign) return false;
  const verifies = (keepSignType: boolean) =>
    createVerify('RSA-SHA256').update(signedText(fields, keepSignType), 'utf8').verify(alipayPublicKey, sign, 'base64');
  return verifies(false) || verifies(true);
}

function signedText(fields: Record<string, string>, keepSignType: boolean): string {
  return Object.keys(fields)
    .filter((name) => name !== 'sign' && (keepSignType || name !== 'sign_type'))
    .sort()
    .map((name) => `${name}=${fields[name]}`)
    .join('&');
}
