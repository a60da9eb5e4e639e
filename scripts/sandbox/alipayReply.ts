import type { SandboxCredentials } from './credentials';
import type { Reply } from './reply';
import { signRsaSha256 } from './signing';

/** Alipay's `msg` for each gateway `code`. */
export const ALIPAY_MESSAGES: Record<string, string> = {
  '10000': 'Success',
  '20000': 'Service Currently Unavailable',
  '40001': 'Missing Required Arguments',
  '40002': 'Invalid Arguments',
  '40004': 'Business Failed',
};

/**
 * An openapi gateway answer: `{"<method>_response": node, "sign": ...}`, the node signed RSA2 with Alipay's key
 * exactly as sent (the envelope is built as text so the signed bytes are the bytes on the wire).
 *
 * @example
 * alipayReply(creds.alipay, 'alipay.trade.close', { code: '10000', msg: 'Success', out_trade_no, trade_no });
 */
export function alipayReply(creds: SandboxCredentials['alipay'], method: string | undefined, node: Record<string, unknown>): Reply {
  const key = method ? `${method.replace(/\./g, '_')}_response` : 'error_response';
  const nodeText = JSON.stringify(node);
  const sign = signRsaSha256(creds.alipay_private_key_pem, nodeText);
  return { status: 200, headers: { 'Content-Type': 'application/json;charset=utf-8' }, body: `{"${key}":${nodeText},"sign":"${sign}"}` };
}

/** @example alipayError(creds.alipay, method, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在') */
export function alipayError(
  creds: SandboxCredentials['alipay'],
  method: string | undefined,
  code: string,
  subCode: string,
  subMsg: string,
  extra: Record<string, unknown> = {},
): Reply {
  return alipayReply(creds, method, { code, msg: ALIPAY_MESSAGES[code], sub_code: subCode, sub_msg: subMsg, ...extra });
}
