/**
 * WeChat Pay v3 as https://api.mch.weixin.qq.com answers a merchant: it checks the request's
 * `Authorization` signature, keeps the trades, and signs every answer with the platform key.
 *   POST /v3/pay/transactions/app                               prepay (APP)
 *   GET  /v3/pay/transactions/out-trade-no/{no}?mchid=...        query
 *   POST /v3/pay/transactions/out-trade-no/{no}/close           close (204)
 *   POST /v3/refund/domestic/refunds                            refund (wechatRefundApi.ts)
 *   GET  /v3/refund/domestic/refunds/{out_refund_no}            refund query
 *
 * @example
 * const wechat = new WechatPayApi(creds.wechat, trades, 300, refunds);
 * const routed = wechat.route(req, url, body); // undefined for a path that is not WeChat's
 */

import { createPublicKey, type KeyObject } from 'node:crypto';
import type http from 'node:http';
import type { SandboxCredentials } from './credentials';
import type { SandboxRoute } from './failures';
import { wechatPrepayId } from './randomIds';
import { RefundDesk } from './refundDesk';
import type { Reply, RoutedRequest } from './reply';
import { isHttpUrl, parseJsonObject } from './requestValues';
import { verifyRsaSha256, WECHAT_SIGNATURE_TYPE, wechatSignatureHeaders } from './signing';
import type { SandboxTrade } from './trade';
import type { TradeBook } from './tradeBook';
import { WechatRefundApi } from './wechatRefundApi';
import { wechatError, wechatReply } from './wechatReply';
import { wechatTransactionResource } from './wechatTransaction';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const OUT_TRADE_NO = /^[A-Za-z0-9_\-|*]{6,32}$/;
const AUTHORIZATION = new RegExp(`^${WECHAT_SIGNATURE_TYPE}\\s+(.+)$`);

interface WechatAuthorization {
  mchid: string;
  nonce_str: string;
  signature: string;
  timestamp: string;
  serial_no: string;
}

function parseAuthorization(header: string | undefined): WechatAuthorization | undefined {
  const match = AUTHORIZATION.exec(header ?? '');
  if (!match) return undefined;
  const fields: Record<string, string> = {};
  for (const [, key, value] of match[1].matchAll(/(\w+)="([^"]*)"/g)) fields[key] = value;
  const { mchid, nonce_str, signature, timestamp, serial_no } = fields;
  if (!mchid || !nonce_str || !signature || !timestamp || !serial_no) return undefined;
  return { mchid, nonce_str, signature, timestamp, serial_no };
}

/** JSON with sorted keys: two prepay bodies are the same order whatever their key order. */
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

export class WechatPayApi {
  private readonly merchantKey: KeyObject;
  private readonly refundApi: WechatRefundApi;

  constructor(
    private readonly creds: SandboxCredentials['wechat'],
    private readonly trades: TradeBook,
    /** A request whose Authorization timestamp is further than this from now is refused. */
    private readonly timestampToleranceSeconds: number,
    /** Shared with Alipay in a running gateway; a desk of its own by default. */
    refunds: RefundDesk = new RefundDesk(),
  ) {
    this.merchantKey = createPublicKey(creds.merchant_cert_pem);
    this.refundApi = new WechatRefundApi(creds, trades, refunds);
  }

  /**
   * A merchant in WeChat's switch from platform certificates to the WeChat Pay public key: an answer is
   * signed with the key the request's `Wechatpay-Serial` names, and with the platform certificate (of this
   * serial) when it names none (https://pay.weixin.qq.com/doc/v3/merchant/4012154180). Undefined: the
   * public key only, as for a merchant that never had certificates.
   */
  certificateSerial: string | undefined = undefined;

  /** The merchant sends an ABNORMAL refund on (see {@link WechatRefundApi.resumeAbnormal}). */
  resumeAbnormalRefund(outRefundNo: string): void {
    this.refundApi.resumeAbnormal(outRefundNo);
  }

  /** Every `/v3/` path is WeChat's: one the sandbox does not implement is answered 404 NOT_FOUND. */
  route(req: http.IncomingMessage, url: URL, body: string): RoutedRequest | undefined {
    const path = url.pathname;
    if (!path.startsWith('/v3/')) return undefined;
    const method = req.method ?? 'GET';
    const signed = (route: SandboxRoute, handle: () => Reply): RoutedRequest => ({
      handle: () => this.signedAsAsked(req, this.checkSignature(req, body) ?? this.checkSerial(req) ?? handle()),
      failure: {
        route,
        reply: (how) => (how === 'rate_limited' ? this.error(429, 'FREQUENCY_LIMITED', '频率超限') : this.error(500, 'SYSTEM_ERROR', '系统错误')),
      },
    });

    if (method === 'POST' && path === '/v3/pay/transactions/app') return signed('wechat.prepay', () => this.prepay(body));
    const close = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(path);
    if (method === 'POST' && close) return signed('wechat.close', () => this.close(decodeURIComponent(close[1]), body));
    const query = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(path);
    if (method === 'GET' && query) return signed('wechat.query', () => this.query(decodeURIComponent(query[1]), url.searchParams));
    if (method === 'POST' && path === '/v3/refund/domestic/refunds') return signed('wechat.refund', () => this.refundApi.create(body));
    const refund = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(path);
    if (method === 'GET' && refund) return signed('wechat.refundQuery', () => this.refundApi.query(decodeURIComponent(refund[1])));
    return { handle: () => this.error(404, 'NOT_FOUND', `sandbox does not implement ${method} ${path}`) };
  }

  private reply(status: number, value?: unknown): Reply {
    return wechatReply(this.creds, status, value);
  }

  private error(status: number, code: string, message: string, detail?: unknown): Reply {
    return wechatError(this.creds, status, code, message, detail);
  }

  /** A `Wechatpay-Serial` that names another key is refused before anything is done; undefined when it passes. */
  private checkSerial(req: http.IncomingMessage): Reply | undefined {
    const named = req.headers['wechatpay-serial'];
    if (named === undefined || named === this.creds.platform_serial) return undefined;
    return this.error(400, 'INVALID_REQUEST', `Wechatpay-Serial ${String(named)} 不是商户的微信支付公钥ID`);
  }

  /** The answer signed with the key the request named in `Wechatpay-Serial` ({@link certificateSerial}). */
  private signedAsAsked(req: http.IncomingMessage, reply: Reply): Reply {
    if (req.headers['wechatpay-serial'] !== undefined || this.certificateSerial === undefined) return reply;
    return { ...reply, headers: { ...reply.headers, ...wechatSignatureHeaders(this.creds, reply.body, { serial: this.certificateSerial }) } };
  }

  /** Checks the merchant's signature exactly as WeChat Pay does; undefined when it passes. */
  private checkSignature(req: http.IncomingMessage, body: string): Reply | undefined {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth)
      return this.error(
        401,
        'SIGN_ERROR',
        'Authorization 头缺失或格式错误，应为 WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="",signature="",timestamp="",serial_no=""',
      );
    if (auth.mchid !== this.creds.mchid) return this.error(401, 'SIGN_ERROR', `商户号 ${auth.mchid} 不存在`);
    // wechatpay-node-v3 sends the serial in lower case (it reads it through @fidm/x509): WeChat accepts either.
    if (auth.serial_no.toUpperCase() !== this.creds.merchant_serial) {
      return this.error(401, 'SIGN_ERROR', `商户证书序列号 ${auth.serial_no} 有误，应为 ${this.creds.merchant_serial}`);
    }
    const tolerance = this.timestampToleranceSeconds;
    if (!/^\d{10}$/.test(auth.timestamp) || Math.abs(Date.now() / 1000 - Number(auth.timestamp)) > tolerance) {
      return this.error(401, 'SIGN_ERROR', `timestamp ${auth.timestamp} 与当前时间相差超过 ${tolerance} 秒`);
    }
    const message = `${req.method}\n${req.url}\n${auth.timestamp}\n${auth.nonce_str}\n${body}\n`;
    if (!verifyRsaSha256(this.merchantKey, message, auth.signature)) return this.error(401, 'SIGN_ERROR', '签名错误，请检查后再试');
    return undefined;
  }

  private prepay(body: string): Reply {
    const req = parseJsonObject(body);
    if (!req) return this.error(400, 'PARAM_ERROR', '请求体不是合法的 JSON 对象');
    if (req.appid !== this.creds.appid) return this.error(400, 'APPID_MCHID_NOT_MATCH', `appid ${String(req.appid)} 与商户号 ${this.creds.mchid} 不匹配`);
    if (req.mchid !== this.creds.mchid) return this.error(400, 'PARAM_ERROR', `body.mchid ${String(req.mchid)} 与请求头中的商户号不一致`);
    const { description, out_trade_no: outTradeNo, notify_url: notifyUrl, time_expire: timeExpire, attach } = req;
    const amount = req.amount as Record<string, unknown> | undefined;
    if (typeof description !== 'string' || description.length === 0 || description.length > 127) {
      return this.error(400, 'PARAM_ERROR', '参数错误: description 必填，长度 1-127', { location: 'body', field: 'description' });
    }
    if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) {
      return this.error(400, 'PARAM_ERROR', '参数错误: out_trade_no 应为 6-32 位数字、大小写字母或 _-|*', { location: 'body', field: 'out_trade_no' });
    }
    if (!isHttpUrl(notifyUrl)) return this.error(400, 'PARAM_ERROR', '参数错误: notify_url 应为 http(s) URL', { location: 'body', field: 'notify_url' });
    if (!amount || typeof amount !== 'object' || typeof amount.total !== 'number' || !Number.isSafeInteger(amount.total) || amount.total <= 0) {
      return this.error(400, 'PARAM_ERROR', '参数错误: amount.total 应为正整数（单位：分）', { location: 'body', field: 'amount.total' });
    }
    if (amount.currency !== undefined && amount.currency !== 'CNY') {
      return this.error(400, 'PARAM_ERROR', '参数错误: amount.currency 仅支持 CNY', { location: 'body', field: 'amount.currency' });
    }
    if (timeExpire !== undefined && (typeof timeExpire !== 'string' || !RFC3339.test(timeExpire) || Number.isNaN(Date.parse(timeExpire)))) {
      return this.error(400, 'PARAM_ERROR', '参数错误: time_expire 应为 RFC3339 格式，如 2018-06-08T10:34:56+08:00', {
        location: 'body',
        field: 'time_expire',
      });
    }
    if (attach !== undefined && (typeof attach !== 'string' || attach.length > 128)) {
      return this.error(400, 'PARAM_ERROR', '参数错误: attach 长度不超过 128', { location: 'body', field: 'attach' });
    }

    const existing = this.trades.get('wechat', outTradeNo);
    if (existing) {
      if (existing.status === 'PAID') return this.error(400, 'ORDERPAID', '该订单已支付');
      if (existing.status === 'CLOSED') return this.error(400, 'ORDER_CLOSED', '订单已关闭');
      // WeChat hands back the same prepay_id only for an identical order; any changed field is a new order.
      if (stableStringify(existing.request) !== stableStringify(req)) return this.error(400, 'INVALID_REQUEST', '201 商户订单号重复');
      return this.reply(200, { prepay_id: existing.prepayId });
    }
    if (typeof timeExpire === 'string' && Date.parse(timeExpire) <= Date.now()) {
      return this.error(400, 'PARAM_ERROR', '参数错误: time_expire 早于当前时间', { location: 'body', field: 'time_expire' });
    }
    const trade: SandboxTrade = {
      channel: 'wechat',
      outTradeNo,
      amountFen: amount.total,
      status: 'UNPAID',
      description,
      notifyUrl: notifyUrl as string,
      createdAt: new Date().toISOString(),
      prepayId: wechatPrepayId(),
      timeExpire: timeExpire as string | undefined,
      attach: attach as string | undefined,
      request: structuredClone(req),
    };
    this.trades.add(trade);
    return this.reply(200, { prepay_id: trade.prepayId });
  }

  private query(outTradeNo: string, query: URLSearchParams): Reply {
    const mchid = query.get('mchid');
    if (!mchid) return this.error(400, 'PARAM_ERROR', '参数错误: 缺少 query 参数 mchid');
    if (mchid !== this.creds.mchid) return this.error(400, 'PARAM_ERROR', `mchid ${mchid} 与请求头中的商户号不一致`);
    const trade = this.trades.get('wechat', outTradeNo);
    if (!trade) return this.error(404, 'ORDER_NOT_EXIST', '订单不存在');
    return this.reply(200, wechatTransactionResource(trade, this.creds));
  }

  private close(outTradeNo: string, body: string): Reply {
    const req = parseJsonObject(body);
    if (!req || req.mchid !== this.creds.mchid) return this.error(400, 'PARAM_ERROR', '参数错误: body.mchid 缺失或与请求头中的商户号不一致');
    const trade = this.trades.get('wechat', outTradeNo);
    if (!trade) return this.error(404, 'ORDER_NOT_EXIST', '订单不存在');
    if (trade.status === 'PAID') return this.error(400, 'ORDERPAID', '订单已支付');
    if (trade.status === 'UNPAID') this.trades.close(trade);
    return this.reply(204);
  }
}
