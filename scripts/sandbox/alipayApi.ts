/**
 * Alipay as the merchant meets it: the openapi gateway (as https://openapi.alipay.com/gateway.do),
 * which checks the app's RSA2 signature and signs its answers with Alipay's key,
 *   POST /alipay/gateway.do   method=alipay.trade.query | alipay.trade.close
 *                             | alipay.trade.refund | alipay.trade.fastpay.refund.query (alipayRefundApi.ts)
 * and the cashier, where an APP trade only comes to exist once the user opens its order string
 * (`registerAppOrder`).
 *
 * @example
 * const alipay = new AlipayApi(creds.alipay, trades, 600, refunds);
 * alipay.registerAppOrder(orderString); // the user opened it in the Alipay app
 */

import { createPublicKey, type KeyObject } from 'node:crypto';
import type http from 'node:http';
import { fenToYuan, yuanToFen } from '../../lib/domain/money';
import { parseGatewayTime, toBeijingDateTime } from '../../lib/domain/time';
import { AlipayRefundApi } from './alipayRefundApi';
import { alipayError, alipayReply } from './alipayReply';
import { ALIPAY_AMOUNT, alipayTradeStatus, parseBizContent, tradeNamedBy } from './alipayRequest';
import type { SandboxCredentials } from './credentials';
import type { SandboxRoute } from './failures';
import { alipayTradeNo } from './randomIds';
import { RefundDesk } from './refundDesk';
import type { Reply, RoutedRequest } from './reply';
import { isHttpUrl } from './requestValues';
import { SandboxGatewayError } from './sandboxGatewayError';
import { alipaySignContent, verifyRsaSha256 } from './signing';
import type { SandboxTrade } from './trade';
import type { TradeBook } from './tradeBook';

const ROUTES: Record<string, SandboxRoute | undefined> = {
  'alipay.trade.query': 'alipay.query',
  'alipay.trade.close': 'alipay.close',
  'alipay.trade.refund': 'alipay.refund',
  'alipay.trade.fastpay.refund.query': 'alipay.refundQuery',
};

const OUT_TRADE_NO = /^[A-Za-z0-9_]{1,64}$/;
// Alipay takes a request timestamp only as `yyyy-MM-dd HH:mm:ss`; lib's parseGatewayTime would also read RFC 3339.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** An order string's `k=v&...` pairs, URL-decoded. */
function parseOrderString(orderString: string): Record<string, string> {
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
  return params;
}

export class AlipayApi {
  private readonly appPublicKey: KeyObject;
  private readonly refundApi: AlipayRefundApi;

  constructor(
    private readonly creds: SandboxCredentials['alipay'],
    private readonly trades: TradeBook,
    /** A request whose `timestamp` (read as Beijing time) is further than this from now is refused. */
    private readonly timestampToleranceSeconds: number,
    /** Shared with WeChat in a running gateway; a desk of its own by default. */
    refunds: RefundDesk = new RefundDesk(),
  ) {
    this.appPublicKey = createPublicKey(creds.app_public_key_pem);
    this.refundApi = new AlipayRefundApi(creds, trades, refunds);
  }

  /** `POST /alipay/gateway.do`; undefined for any other request. */
  route(req: http.IncomingMessage, url: URL, body: string): RoutedRequest | undefined {
    if (url.pathname !== '/alipay/gateway.do' || req.method !== 'POST') return undefined;
    const params = this.params(req, url, body);
    const { method } = params;
    const route = ROUTES[method];
    return {
      handle: () => {
        const refused = this.checkRequest(params);
        if (refused) return refused;
        if (method === 'alipay.trade.query') return this.query(params);
        if (method === 'alipay.trade.close') return this.close(params);
        if (method === 'alipay.trade.refund') return this.refundApi.refund(params);
        if (method === 'alipay.trade.fastpay.refund.query') return this.refundApi.query(params);
        return this.error(method, '40002', 'isv.invalid-method', `不存在的方法名 ${method ?? ''}`);
      },
      failure: route && {
        route,
        reply: (how) =>
          how === 'busy' || how === 'rate_limited'
            ? this.error(method, '20000', 'isp.unknow-error', '系统繁忙')
            : { status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'Internal Server Error' },
      },
    };
  }

  /**
   * The user opened an APP order string in the Alipay app: verify it as Alipay does and record a
   * WAIT_BUYER_PAY trade (the same one again for the same order). Returns a copy.
   */
  registerAppOrder(orderString: string): SandboxTrade {
    const params = parseOrderString(orderString);
    if (params.app_id !== this.creds.app_id) throw new SandboxGatewayError('INVALID_ORDER_STRING', `app_id ${params.app_id} is not ${this.creds.app_id}`);
    if (params.method !== 'alipay.trade.app.pay') throw new SandboxGatewayError('INVALID_ORDER_STRING', `method ${params.method} is not alipay.trade.app.pay`);
    if (params.sign_type !== 'RSA2') throw new SandboxGatewayError('INVALID_ORDER_STRING', `sign_type ${params.sign_type} is not RSA2`);
    if (!params.sign) throw new SandboxGatewayError('INVALID_SIGNATURE', 'order string has no sign');
    if (!verifyRsaSha256(this.appPublicKey, alipaySignContent(params, ['sign']), params.sign)) {
      throw new SandboxGatewayError('INVALID_SIGNATURE', 'order string signature does not verify with the app public key', 401);
    }
    const biz = parseBizContent(params.biz_content ?? '');
    if (!biz) throw new SandboxGatewayError('INVALID_ORDER_STRING', 'biz_content is not JSON');
    const { out_trade_no: outTradeNo, total_amount: totalAmount, subject } = biz;
    if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `out_trade_no ${String(outTradeNo)} must be 1-64 letters, digits or _`);
    }
    // ALIPAY_AMOUNT is Alipay's own format (the sandbox checks what Alipay would, whatever the app's rule says);
    // the range, 0.01 to 100000000.00, is the app's MAX_FEN: yuanToFen checks that.
    const amountFen = typeof totalAmount === 'string' && ALIPAY_AMOUNT.test(totalAmount) ? yuanToFen(totalAmount) : undefined;
    if (amountFen === undefined || amountFen < 1) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `total_amount ${String(totalAmount)} must be a string of yuan, 0.01-100000000.00`);
    }
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 256) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', 'subject is required (1-256 chars)');
    }
    if (params.notify_url !== undefined && !isHttpUrl(params.notify_url)) {
      throw new SandboxGatewayError('INVALID_ORDER_STRING', `notify_url ${params.notify_url} is not an http(s) URL`);
    }
    const existing = this.trades.get('alipay', outTradeNo);
    if (existing) {
      if (existing.status === 'PAID') throw new SandboxGatewayError('ACQ.TRADE_HAS_SUCCESS', '交易已被支付', 409);
      if (existing.status === 'CLOSED') throw new SandboxGatewayError('ACQ.TRADE_HAS_CLOSE', '交易已经关闭', 409);
      if (existing.amountFen !== amountFen || existing.description !== subject) {
        throw new SandboxGatewayError('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改: same out_trade_no, different total_amount or subject', 409);
      }
      return structuredClone(existing);
    }
    const trade: SandboxTrade = {
      channel: 'alipay',
      outTradeNo,
      amountFen,
      status: 'UNPAID',
      description: subject,
      notifyUrl: params.notify_url,
      createdAt: new Date().toISOString(),
      transactionId: alipayTradeNo(),
      request: { ...params, biz_content: biz },
    };
    this.trades.add(trade);
    return structuredClone(trade);
  }

  private reply(method: string | undefined, node: Record<string, unknown>): Reply {
    return alipayReply(this.creds, method, node);
  }

  private error(method: string | undefined, code: string, subCode: string, subMsg: string, extra: Record<string, unknown> = {}): Reply {
    return alipayError(this.creds, method, code, subCode, subMsg, extra);
  }

  /** The query string's parameters, and a form body's over them. */
  private params(req: http.IncomingMessage, url: URL, body: string): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [key, value] of url.searchParams) params[key] = value;
    const type = String(req.headers['content-type'] ?? '');
    if (type.includes('application/x-www-form-urlencoded')) {
      for (const [key, value] of new URLSearchParams(body)) params[key] = value;
    }
    return params;
  }

  /** Gateway-level checks Alipay runs before any business method; undefined when they pass. */
  private checkRequest(params: Record<string, string>): Reply | undefined {
    const { method } = params;
    if (!params.app_id) return this.error(method, '40001', 'isv.missing-app-id', '缺少AppID参数');
    if (params.app_id !== this.creds.app_id) return this.error(method, '40002', 'isv.invalid-app-id', '无效的AppID参数');
    if (!params.sign) return this.error(method, '40001', 'isv.missing-signature', '缺少签名参数');
    if (!params.sign_type) return this.error(method, '40001', 'isv.missing-signature-type', '缺少签名类型参数');
    if (params.sign_type !== 'RSA2') return this.error(method, '40002', 'isv.invalid-signature-type', '无效的签名类型');
    if (!params.timestamp) return this.error(method, '40001', 'isv.missing-timestamp', '缺少时间戳参数');
    const tolerance = this.timestampToleranceSeconds;
    const sentAt = TIMESTAMP.test(params.timestamp) ? parseGatewayTime(params.timestamp) : undefined;
    if (!sentAt || Math.abs(Date.parse(sentAt) - Date.now()) > tolerance * 1000) {
      const now = toBeijingDateTime(new Date());
      return this.error(
        method,
        '40002',
        'isv.invalid-timestamp',
        `非法的时间戳参数: ${params.timestamp} 应为北京时间 yyyy-MM-dd HH:mm:ss，与当前时间 ${now} 相差不超过 ${tolerance} 秒`,
      );
    }
    if (params.charset && params.charset.toLowerCase() !== 'utf-8') return this.error(method, '40002', 'isv.invalid-charset', '字符集错误');
    const content = alipaySignContent(params, ['sign']);
    if (!verifyRsaSha256(this.appPublicKey, content, params.sign)) {
      return this.error(
        method,
        '40002',
        'isv.invalid-signature',
        `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`,
      );
    }
    return undefined;
  }

  private query(params: Record<string, string>): Reply {
    const method = 'alipay.trade.query';
    const named = tradeNamedBy(this.creds, this.trades, method, params);
    if ('refusal' in named) return named.refusal;
    const { trade, outTradeNo } = named;
    if (!trade) {
      return this.error(method, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', {
        buyer_pay_amount: '0.00',
        invoice_amount: '0.00',
        out_trade_no: outTradeNo,
        point_amount: '0.00',
        receipt_amount: '0.00',
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
    if (paid) node.send_pay_date = toBeijingDateTime(new Date(trade.paidAt!));
    node.total_amount = total;
    node.trade_no = trade.transactionId;
    node.trade_status = alipayTradeStatus(trade);
    return this.reply(method, node);
  }

  private close(params: Record<string, string>): Reply {
    const method = 'alipay.trade.close';
    const named = tradeNamedBy(this.creds, this.trades, method, params);
    if ('refusal' in named) return named.refusal;
    const { trade } = named;
    if (!trade) return this.error(method, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在');
    // Only a WAIT_BUYER_PAY trade can be closed; a paid or already closed one is "交易状态不合法".
    if (trade.status !== 'UNPAID') return this.error(method, '40004', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    this.trades.close(trade);
    return this.reply(method, { code: '10000', msg: 'Success', out_trade_no: trade.outTradeNo, trade_no: trade.transactionId });
  }
}
