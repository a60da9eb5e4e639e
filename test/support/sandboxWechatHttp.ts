/**
 * wechatpay-node-v3 pointed at the sandbox, for tests: unlike the app's HTTP layer
 * (lib/gateways/wechatPay.ts) this one verifies nothing, so a test sees every answer as it came.
 */
import type { Output as WechatHttpOutput } from 'wechatpay-node-v3/dist/lib/interface-v2';

const WECHAT_ORIGIN = 'https://api.mch.weixin.qq.com';

/** What the HTTP layer below returns: the SDK's `Output`, plus the raw answer so the caller can verify `Wechatpay-Signature`. */
export interface WechatHttpResult extends WechatHttpOutput {
  /** Response headers, lower-case names. Absent when the connection failed. */
  headers?: Record<string, string>;
  /** Response body exactly as received (what `Wechatpay-Signature` signs). */
  rawBody?: string;
}

/**
 * An HTTP layer for wechatpay-node-v3 (`pay.createHttp(...)`) that sends to `gatewayUrl` instead of
 * https://api.mch.weixin.qq.com. Return shapes follow the SDK's own superagent layer: `{status, data}`
 * on 2xx, `{status, error: text, errRaw}` otherwise, `{status: undefined, errRaw: {code}}` when the
 * connection fails; it also adds `headers` and `rawBody`, which the SDK passes through untouched
 * (transactions_app replaces only `data`).
 *
 * @example
 * pay.createHttp(createWechatSandboxHttp(gateway.url));
 */
export function createWechatSandboxHttp(gatewayUrl: string): {
  post(url: string, params: Record<string, unknown>, headers: Record<string, unknown>): Promise<WechatHttpResult>;
  get(url: string, headers: Record<string, unknown>): Promise<WechatHttpResult>;
  upload(url: string, params: Record<string, unknown>, headers: Record<string, unknown>): Promise<WechatHttpResult>;
} {
  const base = gatewayUrl.replace(/\/+$/, '');
  const target = (url: string) => (url.startsWith(WECHAT_ORIGIN) ? base + url.slice(WECHAT_ORIGIN.length) : url);
  const plainHeaders = (headers: Record<string, unknown>) => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() !== 'accept-encoding' && value !== undefined) out[key] = String(value);
    return out;
  };

  async function send(method: 'GET' | 'POST', url: string, headers: Record<string, unknown>, body?: string): Promise<WechatHttpResult> {
    let res: Response;
    try {
      res = await fetch(target(url), { method, headers: plainHeaders(headers), body });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      // Same shape as the SDK's layer on a connection error: no status, errRaw.code.
      return { status: undefined as unknown as number, errRaw: { code: cause?.code ?? 'ECONNRESET', message: cause?.message ?? (err as Error).message } };
    }
    const rawBody = await res.text();
    const responseHeaders: Record<string, string> = {};
    res.headers.forEach((value, key) => {
      responseHeaders[key] = value;
    });
    if (res.status >= 200 && res.status < 300) {
      let data: unknown = {};
      if (rawBody) {
        try {
          data = JSON.parse(rawBody);
        } catch {
          data = rawBody;
        }
      }
      return { status: res.status, data, headers: responseHeaders, rawBody };
    }
    return { status: res.status, error: rawBody, errRaw: { status: res.status, response: { text: rawBody } }, headers: responseHeaders, rawBody };
  }

  return {
    // superagent's .send(object) is JSON.stringify(object): the same bytes the SDK signed.
    post: (url, params, headers) => send('POST', url, headers, JSON.stringify(params)),
    get: (url, headers) => send('GET', url, headers),
    upload: async () => ({ status: 501, error: 'upload is not supported by the sandbox' }),
  };
}
