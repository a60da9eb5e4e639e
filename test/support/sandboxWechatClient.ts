/**
 * wechatpay-node-v3 as the app builds it, pointed at a sandbox gateway, and the checks a merchant must make
 * on what WeChat sends (the SDK makes none): the answer's or callback's `Wechatpay-Signature`, and the
 * AES-256-GCM `resource` of a callback, opened with node:crypto only.
 */
import { createDecipheriv, createVerify } from 'node:crypto';
import WxPay from 'wechatpay-node-v3';
import type { SandboxCredentials } from '../../scripts/sandbox/credentials';
import { createWechatSandboxHttp, type WechatHttpResult } from './sandboxWechatHttp';

/**
 * @example
 * const pay = wechatSandboxClient(creds.wechat, gateway.url);
 * const result: WechatHttpResult = await pay.refunds({ out_trade_no, out_refund_no, amount: { refund: 100, total: 100, currency: 'CNY' } });
 */
export function wechatSandboxClient(
  creds: SandboxCredentials['wechat'],
  gatewayUrl: string,
  overrides: { privateKey?: Buffer; serial_no?: string } = {},
): WxPay {
  const pay = new WxPay({
    appid: creds.appid,
    mchid: creds.mchid,
    publicKey: Buffer.from(creds.merchant_cert_pem),
    privateKey: Buffer.from(creds.merchant_private_key_pem),
    ...overrides,
  });
  pay.createHttp(createWechatSandboxHttp(gatewayUrl));
  return pay;
}

/** Whether `Wechatpay-Signature` over `timestamp\nnonce\nbody\n` verifies with the platform key; header names in any case. */
export function wechatSignatureValid(creds: SandboxCredentials['wechat'], headers: Record<string, string | string[] | undefined>, body: string): boolean {
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), String(value ?? '')]));
  const message = `${lower['wechatpay-timestamp']}\n${lower['wechatpay-nonce']}\n${body}\n`;
  return createVerify('RSA-SHA256')
    .update(message)
    .verify(creds.platform_public_key_pem, lower['wechatpay-signature'] ?? '', 'base64');
}

/** {@link wechatSignatureValid} for an answer the sandbox HTTP layer returned. */
export function wechatAnswerSignatureValid(creds: SandboxCredentials['wechat'], result: WechatHttpResult): boolean {
  return wechatSignatureValid(creds, result.headers ?? {}, result.rawBody ?? '');
}

/** The `{code, message}` of a non-2xx answer. */
export function wechatErrorOf(result: WechatHttpResult): { code: string; message: string } {
  return JSON.parse(result.error as string) as { code: string; message: string };
}

/** Opens a callback's `resource` (AEAD_AES_256_GCM, key = API v3 key, tag = last 16 bytes); throws if it does not authenticate. */
export function decryptWechatResource(apiv3Key: string, resource: { ciphertext: string; associated_data: string; nonce: string }): string {
  const data = Buffer.from(resource.ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(apiv3Key), Buffer.from(resource.nonce));
  decipher.setAuthTag(data.subarray(data.length - 16));
  decipher.setAAD(Buffer.from(resource.associated_data));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
}
