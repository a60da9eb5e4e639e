import { createSign, createVerify, type KeyObject } from 'node:crypto';

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

/**
 * The order string of `alipay.trade.app.pay` that the app hands to the Alipay SDK, signed with
 * node:crypto: the same text alipay-sdk's `sdkExecute` writes, byte for byte (a test compares them), so
 * that an Alipay pay never loads alipay-sdk (1 MB of code: 118 to 204 ms on the first Alipay pay of a
 * container, measured on Node 20 and 24). The fields in the SDK's order, each `name=` its value
 * URL-encoded, then `sign`: RSA2 with the app's private key over the fields sorted by name, as
 * `name=value` joined by `&`, values not encoded.
 */
export function signAppPayOrder(
  order: { appId: string; timestamp: string; notifyUrl: string; bizContent: Record<string, string> },
  appPrivateKey: KeyObject,
): string {
  const fields: [string, string][] = [
    ['method', 'alipay.trade.app.pay'],
    ['app_id', order.appId],
    ['charset', 'utf-8'],
    ['version', '1.0'],
    ['sign_type', 'RSA2'],
    ['timestamp', order.timestamp],
    ['notify_url', order.notifyUrl],
    ['biz_content', JSON.stringify(order.bizContent)],
  ];
  // The notification's signed text with sign_type kept: sorted by name, `name=value` joined by `&`.
  const sign = createSign('RSA-SHA256')
    .update(signedText(Object.fromEntries(fields), true), 'utf8')
    .sign(appPrivateKey, 'base64');
  return [...fields, ['sign', sign]].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&');
}
