import type { SandboxCredentials } from './credentials';
import { wechatRequestId } from './randomIds';
import type { Reply } from './reply';
import { wechatSignatureHeaders } from './signing';

/**
 * A WeChat Pay v3 answer: JSON (none for 204), a `Request-ID`, and the `Wechatpay-*` headers signing the body
 * with the platform key, errors included.
 *
 * @example
 * wechatReply(creds.wechat, 200, { prepay_id });
 */
export function wechatReply(creds: SandboxCredentials['wechat'], status: number, value?: unknown): Reply {
  const body = value === undefined ? '' : JSON.stringify(value);
  const headers: Record<string, string> = { 'Request-ID': wechatRequestId(), ...wechatSignatureHeaders(creds, body) };
  if (body) headers['Content-Type'] = 'application/json; charset=utf-8';
  return { status, headers, body };
}

/** @example wechatError(creds.wechat, 404, 'ORDER_NOT_EXIST', '订单不存在') */
export function wechatError(creds: SandboxCredentials['wechat'], status: number, code: string, message: string, detail?: unknown): Reply {
  return wechatReply(creds, status, detail === undefined ? { code, message } : { code, message, detail });
}
