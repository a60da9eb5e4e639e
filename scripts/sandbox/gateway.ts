/**
 * A local stand-in for the WeChat Pay v3 and Alipay openapi gateways: one node:http server that
 * speaks both protocols with real signatures, keeps trades in memory, and lets tests and the payment
 * simulator play the user who pays.
 *
 * WeChat Pay v3 (as https://api.mch.weixin.qq.com):
 *   POST /v3/pay/transactions/app                               prepay (APP)
 *   GET  /v3/pay/transactions/out-trade-no/{no}?mchid=...        query
 *   POST /v3/pay/transactions/out-trade-no/{no}/close           close (204)
 * Alipay (as https://openapi.alipay.com/gateway.do):
 *   POST /alipay/gateway.do   method=alipay.trade.query | alipay.trade.close
 * Simulator:
 *   POST /sandbox/pay/{no}            the user pays; body `{"notify":true}` also sends the callback
 *   POST /sandbox/alipay/register     body = an APP order string: the user opened it in Alipay
 *   GET  /sandbox/trades/{no}         the trade as the sandbox holds it
 *
 * @example
 * const gateway = await startSandboxGateway({ credentials });
 * const pay = new WxPay({ appid, mchid, publicKey, privateKey });
 * pay.createHttp(createWechatSandboxHttp(gateway.url));
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey, createVerify, randomBytes, randomInt, KeyObject } from 'node:crypto';
import type { Output as WechatHttpOutput } from 'wechatpay-node-v3/dist/lib/interface-v2';
import type { SandboxCredentials } from './credentials';
import { randomAlphanumeric } from './credentials';
import {
  alipaySignContent,
  beijingDateTime,
  fenToYuan,
  parseBeijingDateTime,
  sendNotificationForPaidTrade,
  signAlipay,
  wechatSignatureHeaders,
  wechatTransactionResource,
  type NotificationDelivery,
} from './notifications';

export type SandboxChannel = 'wechat' | 'alipay';

/** One closed set for both channels; each protocol maps it to its own words (NOTPAY, WAIT_BUYER_PAY, ...). */
export type SandboxTradeStatus = 'UNPAID' | 'PAID' | 'CLOSED';

export interface SandboxTrade {
  channel: SandboxChannel;
  outTradeNo: string;
  amountFen: number;
  status: SandboxTradeStatus;
  /** WeChat `description` / Alipay `subject`. */
  description: string;
  notifyUrl?: string;
  /** ISO 8601 instants. */
  createdAt: string;
  paidAt?: string;
  closedAt?: string;
  /** WeChat `transaction_id` (once paid) / Alipay `trade_no` (from registration, as Alipay creates it when the cashier opens). */
  transactionId?: string;
  /** WeChat only. */
  prepayId?: string;
  /** WeChat `time_expire` as sent (RFC 3339). */
  timeExpire?: string;
  attach?: string;
  payer?: { openid?: string; buyerId?: string; buyerLogonId?: string };
  /** What the merchant sent: the WeChat prepay body, or the Alipay order-string params with `biz_content` parsed. */
  request: Record<string, unknown>;
}

export type SandboxRoute = 'wechat.prepay' | 'wechat.query' | 'wechat.close' | 'alipay.query' | 'alipay.close';

/**
 * How a `failNext` request fails:
 * - `'500'`: HTTP 500 before anything changes (WeChat body `{"code":"SYSTEM_ERROR"}`, signed; Alipay plain text).
 * - `'drop'`: the request IS processed (a prepay is created, a close closes), then the socket is
 *   destroyed without an answer: the caller cannot know, and must retry or query.
 * - `'busy'`: the gateway's own "try again" answer: Alipay HTTP 200 `code 20000 isp.unknow-error`
 *   (signed), WeChat same as `'500'`.
 */
export type SandboxFailure = '500' | 'drop' | 'busy';

export interface SandboxGateway {
  url: string;
  port: number;
  credentials: SandboxCredentials;
  close(): Promise<void>;
  /** marks a trade paid as the gateway would after the user pays; returns the gateway trade id */
  pay(outTradeNo: string): { channel: SandboxChannel; transactionId: string; amountFen: number };
  /** A copy of the trade as the sandbox holds it (WeChat first if both channels know the number). */
  trade(outTradeNo: string): SandboxTrade | undefined;
  /** The user opened an Alipay APP order string: verify its signature and record a WAIT_BUYER_PAY trade. */
  registerAlipayOrder(orderString: string): SandboxTrade;
  /** make the next N requests matching a route fail (HTTP 500 / network drop) - for failure tests */
  failNext(route: SandboxRoute, times?: number, how?: SandboxFailure): void;
}

/** A refusal from the sandbox itself (admin API / `pay()` / `registerAlipayOrder()`), with a stable code. */
export class SandboxGatewayError extends Error {
  constructor(
    readonly code:
      | 'TRADE_NOT_FOUND'
      | 'TRADE_CLOSED'
      | 'TRADE_EXPIRED'
      | 'AMBIGUOUS_TRADE'
      | 'INVALID_ORDER_STRING'
      | 'INVALID_SIGNATURE'
      | 'ACQ.CONTEXT_INCONSISTENT'
      | 'ACQ.TRADE_HAS_SUCCESS'
      | 'ACQ.TRADE_HAS_CLOSE',
    message: string,
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = 'SandboxGatewayError';
  }
}

export interface StartSandboxGatewayOptions {
  credentials: SandboxCredentials;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** WeChat refuses a request whose Authorization timestamp is further than this from now. Default 300. */
  wechatTimestampToleranceSeconds?: number;
  /**
   * Alipay refuses a request whose `timestamp` (read as Beijing time) is further than this from now,
   * with `isv.invalid-timestamp`. Default 600: a process in UTC that sends its local time is 8 h off.
   */
  alipayTimestampToleranceSeconds?: number;
}

// ---------------------------------------------------------------------------------------------
// helpers

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(value),
});

function digits(count: number): string {
  let out = '';
  for (let i = 0; i < count; i += 1) out += String(randomInt(10));
  return out;
}

/** yyyyMMddHHmmss in Beijing time. */
function beijingCompact(date = new Date()): string {
  return beijingDateTime(date).replace(/[- :]/g, '');
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${stableStringify((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

const MAX_BODY_BYTES = 1024 * 1024;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const ALIPAY_ROUTES: Record<string, SandboxRoute | undefined> = { 'alipay.trade.query': 'alipay.query', 'alipay.trade.close': 'alipay.close' };

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const WECHAT_OUT_TRADE_NO = /^[A-Za-z0-9_\-|*]{6,32}$/;
const ALIPAY_OUT_TRADE_NO = /^[A-Za-z0-9_]{1,64}$/;
const ALIPAY_AMOUNT = /^(0|[1-9]\d{0,8})(\.\d{1,2})?$/;

/** "12.3" -> 1230 without floating point. */
function yuanToFen(text: string): number {
  const [yuan, fraction = ''] = text.split('.');
  return Number(yuan) * 100 + Number(`${fraction}00`.slice(0, 2));
}

function isHttpUrl(text: unknown): boolean {
  if (typeof text !== 'string' || text.length > 256) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// WeChat Pay v3

interface WechatAuthorization {
  mchid: string;
  nonce_str: string;
  signature: string;
  timestamp: string;
  serial_no: string;
}

function parseWechatAuthorization(header: string | undefined): WechatAuthorization | undefined {
  const match = /^WECHATPAY2-SHA256-RSA2048\s+(.+)$/.exec(header ?? '');
  if (!match) return undefined;
  const fields: Record<string, string> = {};
  for (const [, key, value] of match[1].matchAll(/(\w+)="([^"]*)"/g)) fields[key] = value;
  const { mchid, nonce_str, signature, timestamp, serial_no } = fields;
  if (!mchid || !nonce_str || !signature || !timestamp || !serial_no) return undefined;
  return { mchid, nonce_str, signature, timestamp, serial_no };
}

// ---------------------------------------------------------------------------------------------

/**
 * Starts the sandbox gateway. Resolves once it listens.
 *
 * @example
 * const gateway = await startSandboxGateway({ credentials, port: 4010 });
 * // ... later
 * await gateway.close();
 */
export async function startSandboxGateway(opts: StartSandboxGatewayOptions): Promise<SandboxGateway> {
  const creds = opts.credentials;
  const host = opts.host ?? '127.0.0.1';
  const wechatTolerance = opts.wechatTimestampToleranceSeconds ?? 300;
  const alipayTolerance = opts.alipayTimestampToleranceSeconds ?? 600;
  const merchantKey: KeyObject = createPublicKey(creds.wechat.merchant_cert_pem);
  const appPublicKey: KeyObject = createPublicKey(creds.alipay.app_public_key_pem);

  const wechatTrades = new Map<string, SandboxTrade>();
  const alipayTrades = new Map<string, SandboxTrade>();
  const failures = new Map<SandboxRoute, SandboxFailure[]>();

  const copy = (trade: SandboxTrade): SandboxTrade => structuredClone(trade);

  function findTrade(outTradeNo: string): SandboxTrade | undefined {
    const wechat = wechatTrades.get(outTradeNo);
    const alipay = alipayTrades.get(outTradeNo);
    if (wechat && alipay) throw new SandboxGatewayError('AMBIGUOUS_TRADE', `${outTradeNo} exists on both channels`, 409);
    return wechat ?? alipay;
  }

  function takeFailure(route: SandboxRoute): SandboxFailure | undefined {
    const queue = failures.get(route);
    return queue?.shift();
  }

  // ---- state changes shared by HTTP and the in-process API ----

  function pay(outTradeNo: string): { channel: SandboxChannel; transactionId: string; amountFen: number } {
    const trade = findTrade(outTradeNo);
    if (!trade) throw new SandboxGatewayError('TRADE_NOT_FOUND', `no trade ${outTradeNo}: WeChat needs a prepay, Alipay a registered order string`, 404);
    if (trade.status === 'CLOSED') throw new SandboxGatewayError('TRADE_CLOSED', `trade ${outTradeNo} is closed`, 409);
    if (trade.status === 'UNPAID') {
      if (trade.timeExpire && Date.parse(trade.timeExpire) < Date.now()) {
        throw new SandboxGatewayError('TRADE_EXPIRED', `trade ${outTradeNo} expired at ${trade.timeExpire}`, 409);
      }
      trade.status = 'PAID';
      trade.paidAt = new Date().toISOString();
      if (trade.channel === 'wechat') {
        trade.transactionId = `420000${digits(4)}${beijingCompact().slice(0, 8)}${digits(10)}`;
        trade.payer = { openid: `o${randomAlphanumeric(27)}` };
      } else {
        trade.payer = { buyerId: `2088${digits(12)}`, buyerLogonId: `1${digits(2)}****${digits(4)}` };
      }
    }
    return { channel: trade.channel, transactionId: trade.transactionId!, amountFen: trade.amountFen };
  }

  function registerAlipayOrder(orderString: string): SandboxTrade {
    const params: Record<string, string> = {};
    try {
      for (const pair of orderString.trim().split('&')) {
        if (!pair) continue;
        const at = pair.indexOf('=');
        if (at <= 0) throw new Error(`bad pair ${pair}`);
        params[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1));
      }
    } catch (err) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `order string is not k=v&...: ${(err as Error).message}`);
    }
    if (params.app_id !== creds.alipay.app_id) throw new SandboxGatewayError('INVALID_ORDER_STRING', `app_id ${params.app_id} is not ${creds.alipay.app_id}`);
    if (params.method !== 'alipay.trade.app.pay') throw new SandboxGatewayError('INVALID_ORDER_STRING', `method ${params.method} is not alipay.trade.app.pay`);
    if (params.sign_type !== 'RSA2') throw new SandboxGatewayError('INVALID_ORDER_STRING', `sign_type ${params.sign_type} is not RSA2`);
    if (!params.sign) throw new SandboxGatewayError('INVALID_SIGNATURE', 'order string has no sign');
    const verified = createVerify('RSA-SHA256')
      .update(alipaySignContent(params, ['sign']), 'utf8')
      .verify(appPublicKey, params.sign, 'base64');
    if (!verified) throw new SandboxGatewayError('INVALID_SIGNATURE', 'order string signature does not verify with the app public key', 401);
    let biz: Record<string, unknown>;
    try {
      biz = JSON.parse(params.biz_content ?? '') as Record<string, unknown>;
    } catch {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', 'biz_content is not JSON');
    }
    const outTradeNo = biz.out_trade_no;
    const totalAmount = biz.total_amount;
    const subject = biz.subject;
    if (typeof outTradeNo !== 'string' || !ALIPAY_OUT_TRADE_NO.test(outTradeNo)) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `out_trade_no ${String(outTradeNo)} must be 1-64 letters, digits or _`);
    }
    if (typeof totalAmount !== 'string' || !ALIPAY_AMOUNT.test(totalAmount) || yuanToFen(totalAmount) < 1) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `total_amount ${String(totalAmount)} must be a string of yuan, 0.01-100000000.00`);
    }
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 256) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', 'subject is required (1-256 chars)');
    }
    if (params.notify_url !== undefined && !isHttpUrl(params.notify_url)) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `notify_url ${params.notify_url} is not an http(s) URL`);
    }
    const amountFen = yuanToFen(totalAmount);
    const existing = alipayTrades.get(outTradeNo);
    if (existing) {
      if (existing.status === 'PAID') throw new SandboxGatewayError('ACQ.TRADE_HAS_SUCCESS', '交易已被支付', 409);
      if (existing.status === 'CLOSED') throw new SandboxGatewayError('ACQ.TRADE_HAS_CLOSE', '交易已经关闭', 409);
      if (existing.amountFen !== amountFen || existing.description !== subject) {
        throw new SandboxGatewayError('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改: same out_trade_no, different total_amount or subject', 409);
      }
      return copy(existing);
    }
    const trade: SandboxTrade = {
      channel: 'alipay',
      outTradeNo,
      amountFen,
      status: 'UNPAID',
      description: subject,
      notifyUrl: params.notify_url,
      createdAt: new Date().toISOString(),
      transactionId: `${beijingCompact().slice(0, 8)}22001${digits(15)}`,
      request: { ...params, biz_content: biz },
    };
    alipayTrades.set(outTradeNo, trade);
    return copy(trade);
  }

  // ---- WeChat Pay v3 routes ----

  function wechatReply(status: number, value?: unknown): Reply {
    const body = value === undefined ? '' : JSON.stringify(value);
    const headers: Record<string, string> = {
      'Request-ID': randomBytes(23).toString('hex').toUpperCase(),
      ...wechatSignatureHeaders(creds.wechat, body),
    };
    if (body) headers['Content-Type'] = 'application/json; charset=utf-8';
    return { status, headers, body };
  }

  const wechatError = (status: number, code: string, message: string, detail?: unknown): Reply =>
    wechatReply(status, detail === undefined ? { code, message } : { code, message, detail });

  /** Checks the merchant's signature exactly as WeChat Pay does; undefined when it passes. */
  function checkWechatSignature(req: http.IncomingMessage, body: string): Reply | undefined {
    const auth = parseWechatAuthorization(req.headers.authorization);
    if (!auth) return wechatError(401, 'SIGN_ERROR', 'Authorization 头缺失或格式错误，应为 WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="",signature="",timestamp="",serial_no=""');
    if (auth.mchid !== creds.wechat.mchid) return wechatError(401, 'SIGN_ERROR', `商户号 ${auth.mchid} 不存在`);
    // wechatpay-node-v3 sends the serial in lower case (it reads it through @fidm/x509): WeChat accepts either.
    if (auth.serial_no.toUpperCase() !== creds.wechat.merchant_serial) {
      return wechatError(401, 'SIGN_ERROR', `商户证书序列号 ${auth.serial_no} 有误，应为 ${creds.wechat.merchant_serial}`);
    }
    const timestamp = Number(auth.timestamp);
    if (!/^\d{10}$/.test(auth.timestamp) || Math.abs(Date.now() / 1000 - timestamp) > wechatTolerance) {
      return wechatError(401, 'SIGN_ERROR', `timestamp ${auth.timestamp} 与当前时间相差超过 ${wechatTolerance} 秒`);
    }
    const message = `${req.method}\n${req.url}\n${auth.timestamp}\n${auth.nonce_str}\n${body}\n`;
    let ok = false;
    try {
      ok = createVerify('RSA-SHA256').update(message, 'utf8').verify(merchantKey, auth.signature, 'base64');
    } catch {
      ok = false;
    }
    if (!ok) return wechatError(401, 'SIGN_ERROR', '签名错误，请检查后再试');
    return undefined;
  }

  function parseJsonObject(body: string): Record<string, unknown> | undefined {
    try {
      const value = JSON.parse(body) as unknown;
      return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  function wechatPrepay(body: string): Reply {
    const req = parseJsonObject(body);
    if (!req) return wechatError(400, 'PARAM_ERROR', '请求体不是合法的 JSON 对象');
    if (req.appid !== creds.wechat.appid) return wechatError(400, 'APPID_MCHID_NOT_MATCH', `appid ${String(req.appid)} 与商户号 ${creds.wechat.mchid} 不匹配`);
    if (req.mchid !== creds.wechat.mchid) return wechatError(400, 'PARAM_ERROR', `body.mchid ${String(req.mchid)} 与请求头中的商户号不一致`);
    const { description, out_trade_no: outTradeNo, notify_url: notifyUrl, time_expire: timeExpire, attach } = req;
    const amount = req.amount as Record<string, unknown> | undefined;
    if (typeof description !== 'string' || description.length === 0 || description.length > 127) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: description 必填，长度 1-127', { location: 'body', field: 'description' });
    }
    if (typeof outTradeNo !== 'string' || !WECHAT_OUT_TRADE_NO.test(outTradeNo)) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: out_trade_no 应为 6-32 位数字、大小写字母或 _-|*', { location: 'body', field: 'out_trade_no' });
    }
    if (!isHttpUrl(notifyUrl)) return wechatError(400, 'PARAM_ERROR', '参数错误: notify_url 应为 http(s) URL', { location: 'body', field: 'notify_url' });
    if (!amount || typeof amount !== 'object' || typeof amount.total !== 'number' || !Number.isSafeInteger(amount.total) || amount.total <= 0) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: amount.total 应为正整数（单位：分）', { location: 'body', field: 'amount.total' });
    }
    if (amount.currency !== undefined && amount.currency !== 'CNY') {
      return wechatError(400, 'PARAM_ERROR', '参数错误: amount.currency 仅支持 CNY', { location: 'body', field: 'amount.currency' });
    }
    if (timeExpire !== undefined && (typeof timeExpire !== 'string' || !RFC3339.test(timeExpire) || Number.isNaN(Date.parse(timeExpire)))) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: time_expire 应为 RFC3339 格式，如 2018-06-08T10:34:56+08:00', { location: 'body', field: 'time_expire' });
    }
    if (attach !== undefined && (typeof attach !== 'string' || attach.length > 128)) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: attach 长度不超过 128', { location: 'body', field: 'attach' });
    }

    const existing = wechatTrades.get(outTradeNo);
    if (existing) {
      if (existing.status === 'PAID') return wechatError(400, 'ORDERPAID', '该订单已支付');
      if (existing.status === 'CLOSED') return wechatError(400, 'ORDER_CLOSED', '订单已关闭');
      // WeChat hands back the same prepay_id only for an identical order; any changed field is a new order.
      if (stableStringify(existing.request) !== stableStringify(req)) return wechatError(400, 'INVALID_REQUEST', '201 商户订单号重复');
      return wechatReply(200, { prepay_id: existing.prepayId });
    }
    if (typeof timeExpire === 'string' && Date.parse(timeExpire) <= Date.now()) {
      return wechatError(400, 'PARAM_ERROR', '参数错误: time_expire 早于当前时间', { location: 'body', field: 'time_expire' });
    }
    const trade: SandboxTrade = {
      channel: 'wechat',
      outTradeNo,
      amountFen: amount.total,
      status: 'UNPAID',
      description,
      notifyUrl: notifyUrl as string,
      createdAt: new Date().toISOString(),
      prepayId: `wx${beijingCompact()}${randomBytes(10).toString('hex')}`,
      timeExpire: timeExpire as string | undefined,
      attach: attach as string | undefined,
      request: structuredClone(req),
    };
    wechatTrades.set(outTradeNo, trade);
    return wechatReply(200, { prepay_id: trade.prepayId });
  }

  function wechatQuery(outTradeNo: string, query: URLSearchParams): Reply {
    const mchid = query.get('mchid');
    if (!mchid) return wechatError(400, 'PARAM_ERROR', '参数错误: 缺少 query 参数 mchid');
    if (mchid !== creds.wechat.mchid) return wechatError(400, 'PARAM_ERROR', `mchid ${mchid} 与请求头中的商户号不一致`);
    const trade = wechatTrades.get(outTradeNo);
    if (!trade) return wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    return wechatReply(200, wechatTransactionResource(trade, creds.wechat));
  }

  function wechatClose(outTradeNo: string, body: string): Reply {
    const req = parseJsonObject(body);
    if (!req || req.mchid !== creds.wechat.mchid) return wechatError(400, 'PARAM_ERROR', '参数错误: body.mchid 缺失或与请求头中的商户号不一致');
    const trade = wechatTrades.get(outTradeNo);
    if (!trade) return wechatError(404, 'ORDER_NOT_EXIST', '订单不存在');
    if (trade.status === 'PAID') return wechatError(400, 'ORDERPAID', '订单已支付');
    if (trade.status === 'UNPAID') {
      trade.status = 'CLOSED';
      trade.closedAt = new Date().toISOString();
    }
    return wechatReply(204);
  }

  // ---- Alipay openapi gateway ----

  function alipayReply(method: string | undefined, node: Record<string, unknown>): Reply {
    const key = method ? `${method.replace(/\./g, '_')}_response` : 'error_response';
    const nodeText = JSON.stringify(node);
    const sign = signAlipay(creds.alipay.alipay_private_key_pem, nodeText);
    // The signed text is the raw node, byte for byte: build the envelope as text, never re-serialize it.
    return { status: 200, headers: { 'Content-Type': 'application/json;charset=utf-8' }, body: `{"${key}":${nodeText},"sign":"${sign}"}` };
  }

  const ALIPAY_MESSAGES: Record<string, string> = {
    '10000': 'Success',
    '20000': 'Service Currently Unavailable',
    '40001': 'Missing Required Arguments',
    '40002': 'Invalid Arguments',
    '40004': 'Business Failed',
  };

  const alipayError = (method: string | undefined, code: string, subCode: string, subMsg: string, extra: Record<string, unknown> = {}): Reply =>
    alipayReply(method, { code, msg: ALIPAY_MESSAGES[code], sub_code: subCode, sub_msg: subMsg, ...extra });

  function alipayParams(req: http.IncomingMessage, body: string): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [key, value] of new URL(req.url ?? '/', 'http://sandbox').searchParams) params[key] = value;
    const type = String(req.headers['content-type'] ?? '');
    if (type.includes('application/x-www-form-urlencoded')) {
      for (const [key, value] of new URLSearchParams(body)) params[key] = value;
    }
    return params;
  }

  /** Gateway-level checks Alipay runs before any business method; undefined when they pass. */
  function checkAlipayRequest(params: Record<string, string>): Reply | undefined {
    const { method } = params;
    if (!params.app_id) return alipayError(method, '40001', 'isv.missing-app-id', '缺少AppID参数');
    if (params.app_id !== creds.alipay.app_id) return alipayError(method, '40002', 'isv.invalid-app-id', '无效的AppID参数');
    if (!params.sign) return alipayError(method, '40001', 'isv.missing-signature', '缺少签名参数');
    if (!params.sign_type) return alipayError(method, '40001', 'isv.missing-signature-type', '缺少签名类型参数');
    if (params.sign_type !== 'RSA2') return alipayError(method, '40002', 'isv.invalid-signature-type', '无效的签名类型');
    if (!params.timestamp) return alipayError(method, '40001', 'isv.missing-timestamp', '缺少时间戳参数');
    const sentAt = parseBeijingDateTime(params.timestamp);
    if (!sentAt || Math.abs(sentAt.getTime() - Date.now()) > alipayTolerance * 1000) {
      return alipayError(method, '40002', 'isv.invalid-timestamp', `非法的时间戳参数: ${params.timestamp} 应为北京时间 yyyy-MM-dd HH:mm:ss，与当前时间 ${beijingDateTime()} 相差不超过 ${alipayTolerance} 秒`);
    }
    if (params.charset && params.charset.toLowerCase() !== 'utf-8') return alipayError(method, '40002', 'isv.invalid-charset', '字符集错误');
    const content = alipaySignContent(params, ['sign']);
    const ok = createVerify('RSA-SHA256').update(content, 'utf8').verify(appPublicKey, params.sign, 'base64');
    if (!ok) return alipayError(method, '40002', 'isv.invalid-signature', `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`);
    return undefined;
  }

  function alipayTradeFor(method: string, params: Record<string, string>): { trade?: SandboxTrade; reply?: Reply; outTradeNo?: string } {
    let biz: Record<string, unknown>;
    try {
      biz = JSON.parse(params.biz_content ?? '{}') as Record<string, unknown>;
    } catch {
      return { reply: alipayError(method, '40002', 'isv.invalid-parameter', 'biz_content 不是合法的 JSON') };
    }
    const outTradeNo = typeof biz.out_trade_no === 'string' ? biz.out_trade_no : undefined;
    const tradeNo = typeof biz.trade_no === 'string' ? biz.trade_no : undefined;
    if (!outTradeNo && !tradeNo) return { reply: alipayError(method, '40004', 'ACQ.INVALID_PARAMETER', '参数无效: out_trade_no 与 trade_no 不能同时为空') };
    const trade = tradeNo
      ? [...alipayTrades.values()].find((t) => t.transactionId === tradeNo)
      : alipayTrades.get(outTradeNo!);
    return { trade, outTradeNo: outTradeNo ?? trade?.outTradeNo };
  }

  function alipayQuery(params: Record<string, string>): Reply {
    const method = 'alipay.trade.query';
    const { trade, reply, outTradeNo } = alipayTradeFor(method, params);
    if (reply) return reply;
    if (!trade) {
      return alipayError(method, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', {
        buyer_pay_amount: '0.00', invoice_amount: '0.00', out_trade_no: outTradeNo, point_amount: '0.00', receipt_amount: '0.00',
      });
    }
    const paid = trade.status === 'PAID';
    const total = fenToYuan(trade.amountFen);
    const node: Record<string, unknown> = { code: '10000', msg: 'Success' };
    if (trade.payer?.buyerLogonId) node.buyer_logon_id = trade.payer.buyerLogonId;
    node.buyer_pay_amount = paid ? total : '0.00';
    if (trade.payer?.buyerId) {
      node.buyer_user_id = trade.payer.buyerId;
      node.buyer_user_type = 'PRIVATE';
    }
    node.invoice_amount = paid ? total : '0.00';
    node.out_trade_no = trade.outTradeNo;
    node.point_amount = '0.00';
    node.receipt_amount = paid ? total : '0.00';
    if (paid) node.send_pay_date = beijingDateTime(new Date(trade.paidAt!));
    node.total_amount = total;
    node.trade_no = trade.transactionId;
    node.trade_status = { UNPAID: 'WAIT_BUYER_PAY', PAID: 'TRADE_SUCCESS', CLOSED: 'TRADE_CLOSED' }[trade.status];
    return alipayReply(method, node);
  }

  function alipayClose(params: Record<string, string>): Reply {
    const method = 'alipay.trade.close';
    const { trade, reply } = alipayTradeFor(method, params);
    if (reply) return reply;
    if (!trade) return alipayError(method, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在');
    // Only a WAIT_BUYER_PAY trade can be closed; a paid or already closed one is "交易状态不合法".
    if (trade.status !== 'UNPAID') return alipayError(method, '40004', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    trade.status = 'CLOSED';
    trade.closedAt = new Date().toISOString();
    return alipayReply(method, { code: '10000', msg: 'Success', out_trade_no: trade.outTradeNo, trade_no: trade.transactionId });
  }

  // ---- simulator routes ----

  function sandboxError(err: unknown): Reply {
    if (err instanceof SandboxGatewayError) return json(err.httpStatus, { code: err.code, message: err.message });
    throw err;
  }

  // ---- dispatch ----

  interface Routed {
    route?: SandboxRoute;
    handle: () => Reply | Promise<Reply>;
  }

  function dispatch(req: http.IncomingMessage, body: string): Routed {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const withWechatAuth = (handler: () => Reply) => () => checkWechatSignature(req, body) ?? handler();

    if (path.startsWith('/v3/')) {
      if (method === 'POST' && path === '/v3/pay/transactions/app') return { route: 'wechat.prepay', handle: withWechatAuth(() => wechatPrepay(body)) };
      const close = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(path);
      if (method === 'POST' && close) return { route: 'wechat.close', handle: withWechatAuth(() => wechatClose(decodeURIComponent(close[1]), body)) };
      const query = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(path);
      if (method === 'GET' && query) return { route: 'wechat.query', handle: withWechatAuth(() => wechatQuery(decodeURIComponent(query[1]), url.searchParams)) };
      return { handle: () => wechatError(404, 'NOT_FOUND', `sandbox does not implement ${method} ${path}`) };
    }

    if (path === '/alipay/gateway.do' && method === 'POST') {
      const params = alipayParams(req, body);
      return {
        route: ALIPAY_ROUTES[params.method],
        handle: () => {
          const refused = checkAlipayRequest(params);
          if (refused) return refused;
          if (params.method === 'alipay.trade.query') return alipayQuery(params);
          if (params.method === 'alipay.trade.close') return alipayClose(params);
          return alipayError(params.method, '40002', 'isv.invalid-method', `不存在的方法名 ${params.method ?? ''}`);
        },
      };
    }

    const payPath = /^\/sandbox\/pay\/([^/]+)$/.exec(path);
    if (method === 'POST' && payPath) {
      return {
        handle: async () => {
          const outTradeNo = decodeURIComponent(payPath[1]);
          const options = (body.trim() ? parseJsonObject(body) : {}) ?? {};
          try {
            const paid = pay(outTradeNo);
            let notification: NotificationDelivery | { error: string } | undefined;
            if (options.notify === true) {
              const notifyUrl = typeof options.notify_url === 'string' ? options.notify_url : undefined;
              notification = await sendNotificationForPaidTrade(gateway, outTradeNo, notifyUrl).catch((err: Error) => ({ error: err.message }));
            }
            return json(200, { ...paid, outTradeNo, ...(notification ? { notification } : {}) });
          } catch (err) {
            return sandboxError(err);
          }
        },
      };
    }
    if (method === 'POST' && path === '/sandbox/alipay/register') {
      return {
        handle: () => {
          try {
            return json(200, registerAlipayOrder(body));
          } catch (err) {
            return sandboxError(err);
          }
        },
      };
    }
    const tradePath = /^\/sandbox\/trades\/([^/]+)$/.exec(path);
    if (method === 'GET' && tradePath) {
      return {
        handle: () => {
          try {
            const trade = findTrade(decodeURIComponent(tradePath[1]));
            return trade ? json(200, trade) : json(404, { code: 'TRADE_NOT_FOUND', message: 'no such trade' });
          } catch (err) {
            return sandboxError(err);
          }
        },
      };
    }
    return { handle: () => json(404, { code: 'NOT_FOUND', message: `no route ${method} ${path}` }) };
  }

  function failureReply(route: SandboxRoute, how: SandboxFailure): Reply {
    if (route.startsWith('wechat.')) return wechatError(500, 'SYSTEM_ERROR', '系统错误');
    if (how === 'busy') {
      const method = route === 'alipay.query' ? 'alipay.trade.query' : 'alipay.trade.close';
      return alipayError(method, '20000', 'isp.unknow-error', '系统繁忙');
    }
    return { status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'Internal Server Error' };
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const { route, handle } = dispatch(req, body);
    const failure = route ? takeFailure(route) : undefined;
    let reply: Reply;
    if (failure === '500' || failure === 'busy') {
      reply = failureReply(route!, failure);
    } else {
      reply = await handle();
      if (failure === 'drop') {
        req.socket.destroy();
        return;
      }
    }
    res.writeHead(reply.status, reply.headers ?? {});
    res.end(reply.body);
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`sandbox gateway error: ${err.message}`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const gateway: SandboxGateway = {
    url,
    port,
    credentials: creds,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; without this close() waits for them to time out.
        server.closeAllConnections();
      }),
    pay,
    trade: (outTradeNo) => {
      const trade = findTrade(outTradeNo);
      return trade && copy(trade);
    },
    registerAlipayOrder,
    failNext: (route, times = 1, how = '500') => {
      const queue = failures.get(route) ?? [];
      for (let i = 0; i < times; i += 1) queue.push(how);
      failures.set(route, queue);
    },
  };
  return gateway;
}

// ---------------------------------------------------------------------------------------------
// pointing wechatpay-node-v3 at the sandbox

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
