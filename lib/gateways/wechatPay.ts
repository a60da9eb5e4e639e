import { createSign, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import WxPay from 'wechatpay-node-v3';
import type { Output } from 'wechatpay-node-v3/dist/lib/interface-v2';
import { firstCharacters } from '../domain/text';
import { type Clock, parseGatewayTime, toBeijingRfc3339 } from '../domain/time';
import {
  GatewayError,
  type PaymentGateway,
  type PrepayRequest,
  type RefundRequest,
  type RefundState,
  TradeAlreadyPaid,
  TradeClosed,
  type TradeState,
  type WechatPayParam,
} from './paymentGateway';
import { isPaynowTrade } from './wechatNotifications';
import type { WechatSignatureVerifier } from './wechatSignature';

/** The SDK builds every URL on this origin; requests are re-pointed at `gatewayUrl`. */
const SDK_ORIGIN = 'https://api.mch.weixin.qq.com';
const TIMEOUT_MS = 5_000;

export interface WechatPayOptions {
  appid: string;
  mchid: string;
  merchantSerial: string;
  merchantPrivateKeyPem: string;
  merchantCertPem: string;
  gatewayUrl: string;
  notifyUrl: string;
  refundNotifyUrl: string;
  /** Checks WeChat's response signatures, which the SDK never does. */
  verifier: WechatSignatureVerifier;
  now: Clock;
}

/**
 * WeChat Pay v3 APP payments through wechatpay-node-v3. The SDK signs requests and the pay_param;
 * its HTTP layer is replaced by one with a timeout, a configurable origin (the local sandbox) and
 * verification of the response signature, since a forged "SUCCESS" from query would complete a payment.
 */
export class WechatPayGateway implements PaymentGateway {
  readonly channel = 'wechat' as const;
  private readonly sdk: WxPay;

  constructor(private readonly options: WechatPayOptions) {
    this.sdk = new WxPay({
      appid: options.appid,
      mchid: options.mchid,
      serial_no: options.merchantSerial,
      publicKey: Buffer.from(options.merchantCertPem),
      privateKey: Buffer.from(options.merchantPrivateKeyPem),
    });
    this.sdk.createHttp(new VerifiedWechatHttp(options.gatewayUrl, options.verifier, options.now));
  }

  async createPayParam({ outTradeNo, amountFen, subject, expiresAt }: PrepayRequest): Promise<WechatPayParam> {
    const result = await this.sdk.transactions_app({
      description: firstCharacters(subject, 127),
      out_trade_no: outTradeNo,
      time_expire: toBeijingRfc3339(expiresAt),
      notify_url: this.options.notifyUrl,
      amount: { total: amountFen, currency: 'CNY' },
    });
    if (result.status === 200 && result.data?.prepayid) return result.data as WechatPayParam;
    const code = errorCode(result);
    if (code === 'ORDERPAID') throw new TradeAlreadyPaid(outTradeNo);
    if (code === 'ORDER_CLOSED' || code === 'ORDERCLOSED') throw new TradeClosed(outTradeNo);
    throw failure('prepay', result);
  }

  /** WeChat's APP pay object for a prepay_id, signed with the merchant key as WeChat documents it (APP调起支付签名). */
  async resumePayParam(prepayId: string): Promise<WechatPayParam> {
    const { appid, mchid, merchantPrivateKeyPem, now } = this.options;
    const timestamp = String(Math.floor(now().getTime() / 1000));
    const noncestr = randomBytes(16).toString('hex');
    const sign = createSign('RSA-SHA256').update(`${appid}\n${timestamp}\n${noncestr}\n${prepayId}\n`, 'utf8').sign(merchantPrivateKeyPem, 'base64');
    return { appid, partnerid: mchid, prepayid: prepayId, package: 'Sign=WXPay', noncestr, timestamp, sign };
  }

  async queryTrade(outTradeNo: string): Promise<TradeState> {
    const result = await this.sdk.query({ out_trade_no: outTradeNo });
    if (result.status === 404 || errorCode(result) === 'ORDER_NOT_EXIST') return { state: 'not_found' };
    if (result.status !== 200 || !result.data) throw failure('query', result);
    const trade = result.data as {
      out_trade_no?: string;
      mchid?: string;
      trade_state: string;
      transaction_id?: string;
      success_time?: string;
      trade_type?: string;
      amount?: { total?: number; currency?: string };
    };
    // A signed answer about another trade (a replay) must not settle this one.
    if (trade.out_trade_no !== outTradeNo || trade.mchid !== this.options.mchid) throw new GatewayError('wechat query answered for another trade');
    switch (trade.trade_state) {
      case 'SUCCESS':
      case 'REFUND': {
        // Paid first (refunded since, for REFUND): the money did arrive. Without its id and amount it
        // cannot be recorded, as a notification without them is refused.
        const amountFen = trade.amount?.total;
        if (!trade.transaction_id || amountFen === undefined || !Number.isSafeInteger(amountFen))
          throw new GatewayError('wechat query: a paid trade without transaction_id or amount');
        // As for notifications: paynow's trades are APP trades in CNY, any other is not recorded.
        if (!isPaynowTrade(trade))
          throw new GatewayError(`wechat query: a paid ${trade.trade_type} trade in ${trade.amount?.currency}, not an APP trade in CNY`);
        return { state: 'paid', transactionId: trade.transaction_id, amountFen, paidAt: trade.success_time ?? '' };
      }
      case 'NOTPAY':
      case 'USERPAYING':
      case 'PAYERROR': // WeChat asks merchants to close a trade after a failed payment: keep it closable
        return { state: 'unpaid' };
      case 'CLOSED':
      case 'REVOKED':
        return { state: 'closed' };
      default:
        throw new GatewayError(`wechat query: unknown trade_state ${trade.trade_state}`);
    }
  }

  async refund(request: RefundRequest): Promise<RefundState> {
    const result = await this.sdk.refunds({
      out_trade_no: request.outTradeNo,
      out_refund_no: request.outRefundNo,
      reason: firstCharacters(request.reason, 80),
      notify_url: this.options.refundNotifyUrl,
      amount: { refund: request.refundFen, total: request.totalFen, currency: 'CNY' },
    });
    if (result.status === 200) return this.refundState(request, result);
    const code = errorCode(result);
    if (code && FINAL_REFUND_REFUSALS.includes(code)) return { state: 'failed', reason: `${code} ${errorMessage(result) ?? ''}`.trim() };
    throw failure('refund', result);
  }

  async queryRefund(request: RefundRequest): Promise<RefundState> {
    const result = await this.sdk.find_refunds(request.outRefundNo);
    if (result.status === 404 || errorCode(result) === 'RESOURCE_NOT_EXISTS') return { state: 'not_found' };
    if (result.status !== 200) throw failure('refund query', result);
    return this.refundState(request, result);
  }

  private refundState(request: RefundRequest, result: Output): RefundState {
    const refund = result.data as WechatRefund | undefined;
    // A signed answer about another refund or amount (a replay, a bug) must not settle this one.
    if (refund?.out_refund_no !== request.outRefundNo || refund.out_trade_no !== request.outTradeNo || refund.amount?.refund !== request.refundFen) {
      throw new GatewayError('wechat refund answered for another refund or amount');
    }
    switch (refund.status) {
      case 'SUCCESS':
        return { state: 'succeeded', refundedAt: parseGatewayTime(refund.success_time) };
      case 'PROCESSING':
        return { state: 'processing' };
      case 'CLOSED':
      case 'ABNORMAL':
        return { state: 'failed', reason: refund.status };
      default:
        throw new GatewayError(`wechat refund: unknown status ${refund.status}`);
    }
  }

  async closeTrade(outTradeNo: string): Promise<void> {
    const result = await this.sdk.close(outTradeNo);
    if (result.status === 204 || result.status === 200) return;
    const code = errorCode(result);
    if (code === 'ORDERPAID') throw new TradeAlreadyPaid(outTradeNo);
    if (code === 'ORDER_NOT_EXIST' || code === 'ORDER_CLOSED' || code === 'ORDERCLOSED' || result.status === 404) return;
    throw failure('close', result);
  }
}

/** A refund as WeChat describes it (create and query answer the same object). */
interface WechatRefund {
  out_refund_no?: string;
  out_trade_no?: string;
  status?: string;
  success_time?: string;
  amount?: { refund?: number; total?: number };
}

/**
 * Refund requests WeChat refuses for good: this number will never pay out (a new refund may follow
 * once a person has looked). NOT_ENOUGH (the merchant's balance), FREQUENCY_LIMITED and SYSTEM_ERROR
 * are worth retrying with the same number, as is anything unknown.
 */
const FINAL_REFUND_REFUSALS = ['USER_ACCOUNT_ABNORMAL', 'RESOURCE_NOT_EXISTS', 'INVALID_REQUEST', 'PARAM_ERROR', 'MCH_NOT_EXISTS'];

function errorCode(result: Output): string | undefined {
  try {
    return typeof result.error === 'string' ? (JSON.parse(result.error) as { code?: string }).code : undefined;
  } catch {
    return undefined;
  }
}

function errorMessage(result: Output): string | undefined {
  try {
    return typeof result.error === 'string' ? (JSON.parse(result.error) as { message?: string }).message : undefined;
  } catch {
    return undefined;
  }
}

function failure(operation: string, result: Output): GatewayError {
  return new GatewayError(`wechat ${operation} failed: HTTP ${result.status ?? 'none'} ${errorCode(result) ?? ''}`.trim());
}

/**
 * The SDK's pluggable HTTP layer, on node:https (already loaded by the AWS SDK; the first `fetch`
 * of a process loads Node's undici, about 75 ms of a cold start on Node 20). Errors are returned as
 * the SDK's own layer returns them.
 */
class VerifiedWechatHttp {
  constructor(
    private readonly gatewayUrl: string,
    private readonly verifier: WechatSignatureVerifier,
    private readonly now: Clock,
  ) {}

  post(url: string, params: Record<string, unknown>, headers: Record<string, string>): Promise<Output> {
    // The SDK signed JSON.stringify(params); send exactly those bytes.
    return this.send(url, { method: 'POST', headers, body: JSON.stringify(params) });
  }

  get(url: string, headers: Record<string, string>): Promise<Output> {
    return this.send(url, { method: 'GET', headers });
  }

  upload(): Promise<Output> {
    throw new GatewayError('upload is not used');
  }

  private async send(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<Output> {
    const target = url.startsWith(SDK_ORIGIN) ? this.gatewayUrl + url.slice(SDK_ORIGIN.length) : url;
    let response: HttpAnswer;
    try {
      response = await httpRequest(target, init, TIMEOUT_MS);
    } catch (error) {
      throw new GatewayError(`wechat gateway unreachable: ${(error as Error).name}`, { cause: error });
    }
    const { body } = response;
    // Every answer is checked, empty ones too (WeChat signs a 204 over an empty body): "not found" and
    // "closed" lead to releasing points, so an unsigned 404 from a proxy must not mean either.
    const verdict = this.verifier.verify(
      {
        timestamp: response.header('wechatpay-timestamp'),
        nonce: response.header('wechatpay-nonce'),
        signature: response.header('wechatpay-signature'),
        serial: response.header('wechatpay-serial'),
        body,
      },
      this.now().getTime(),
    );
    if (verdict !== 'ok') throw new GatewayError(`wechat response signature: ${verdict}`);
    if (!body && response.status === 200) throw new GatewayError('wechat answered 200 with no body');
    if (response.status < 200 || response.status > 299) return { status: response.status, error: body };
    try {
      return { status: response.status, data: body ? JSON.parse(body) : undefined };
    } catch {
      throw new GatewayError('wechat response is not JSON');
    }
  }
}

interface HttpAnswer {
  status: number;
  header(name: string): string;
  body: string;
}

/** One HTTP exchange, given up (TimeoutError) after `timeoutMs` in all; a connection that closes early rejects. */
function httpRequest(target: string, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs: number): Promise<HttpAnswer> {
  const url = new URL(target);
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: init.method, headers: init.headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          header: (name) => String(response.headers[name] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    const timer = setTimeout(() => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    request.on('error', reject);
    request.on('close', () => {
      clearTimeout(timer);
      // Settled already when the answer ended; otherwise the connection went away mid-answer.
      reject(Object.assign(new Error('connection closed before the answer ended'), { name: 'ConnectionClosed' }));
    });
    request.end(init.body);
  });
}
