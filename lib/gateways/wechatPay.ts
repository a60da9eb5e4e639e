import { createPrivateKey, createSign, type KeyObject, randomBytes } from 'node:crypto';
import { firstCharacters } from '../domain/text';
import { type Clock, parseGatewayTime, toBeijingRfc3339 } from '../domain/time';
import {
  GatewayError,
  type PaymentGateway,
  type PrepayRequest,
  type RefundAnswer,
  type RefundRequest,
  type RefundState,
  TradeAlreadyPaid,
  TradeClosed,
  type TradeState,
  type WechatPayParam,
} from './paymentGateway';
import { isPaynowTrade } from './wechatNotifications';
import { type WechatAnswer, WechatPayApi } from './wechatPayApi';
import type { WechatSignatureVerifier } from './wechatSignature';

export interface WechatPayOptions {
  appid: string;
  mchid: string;
  merchantSerial: string;
  merchantPrivateKeyPem: string;
  gatewayUrl: string;
  notifyUrl: string;
  refundNotifyUrl: string;
  /** Checks WeChat's response signatures. */
  verifier: WechatSignatureVerifier;
  /** The WeChat Pay public keys of the stage secret: the first one's id is named in every request. */
  payPublicKeys: { id: string }[];
  now: Clock;
}

/**
 * WeChat Pay v3 APP payments: prepay, the APP pay object, query, close, refund and refund query, as
 * WeChat documents them (docs/references.md), over `WechatPayApi`, which signs each request and
 * checks the signature of each answer, since a forged "SUCCESS" from query would complete a payment.
 */
export class WechatPayGateway implements PaymentGateway {
  readonly channel = 'wechat' as const;
  private readonly api: WechatPayApi;
  private readonly merchantPrivateKey: KeyObject;

  constructor(private readonly options: WechatPayOptions) {
    this.merchantPrivateKey = createPrivateKey(options.merchantPrivateKeyPem);
    this.api = new WechatPayApi({ ...options, merchantPrivateKey: this.merchantPrivateKey, wechatpaySerial: options.payPublicKeys[0]?.id });
  }

  async createPayParam({ outTradeNo, amountFen, subject, expiresAt }: PrepayRequest): Promise<WechatPayParam> {
    const { appid, mchid, notifyUrl } = this.options;
    const answer = await this.api.post('/v3/pay/transactions/app', {
      appid,
      mchid,
      description: firstCharacters(subject, 127),
      out_trade_no: outTradeNo,
      time_expire: toBeijingRfc3339(expiresAt),
      notify_url: notifyUrl,
      amount: { total: amountFen, currency: 'CNY' },
    });
    const prepayId = (answer.data as { prepay_id?: unknown } | undefined)?.prepay_id;
    if (answer.status === 200 && typeof prepayId === 'string' && prepayId) return this.resumePayParam(prepayId);
    if (answer.code === 'ORDERPAID') throw new TradeAlreadyPaid(outTradeNo);
    if (answer.code === 'ORDER_CLOSED' || answer.code === 'ORDERCLOSED') throw new TradeClosed(outTradeNo);
    throw failure('prepay', answer);
  }

  /** WeChat's APP pay object for a prepay_id, signed with the merchant key as WeChat documents it (APP调起支付签名). */
  async resumePayParam(prepayId: string): Promise<WechatPayParam> {
    const { appid, mchid, now } = this.options;
    const timestamp = String(Math.floor(now().getTime() / 1000));
    const noncestr = randomBytes(16).toString('hex');
    const sign = createSign('RSA-SHA256').update(`${appid}\n${timestamp}\n${noncestr}\n${prepayId}\n`, 'utf8').sign(this.merchantPrivateKey, 'base64');
    return { appid, partnerid: mchid, prepayid: prepayId, package: 'Sign=WXPay', noncestr, timestamp, sign };
  }

  async queryTrade(outTradeNo: string): Promise<TradeState> {
    const answer = await this.api.get(`/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${encodeURIComponent(this.options.mchid)}`);
    if (answer.status === 404 || answer.code === 'ORDER_NOT_EXIST') return { state: 'not_found' };
    if (answer.status !== 200 || !answer.data) throw failure('query', answer);
    const trade = answer.data as {
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

  async refund(request: RefundRequest): Promise<RefundAnswer> {
    const answer = await this.api.post('/v3/refund/domestic/refunds', {
      out_trade_no: request.outTradeNo,
      out_refund_no: request.outRefundNo,
      reason: firstCharacters(request.reason, 80),
      notify_url: this.options.refundNotifyUrl,
      amount: { refund: request.refundFen, total: request.totalFen, currency: 'CNY' },
    });
    if (answer.status === 200) return this.refundState(request, answer);
    const { code } = answer;
    if (code && FINAL_REFUND_REFUSALS.includes(code)) return { state: 'failed', reason: `${code} ${answer.message ?? ''}`.trim() };
    throw failure('refund', answer);
  }

  async queryRefund(request: RefundRequest): Promise<RefundState> {
    const answer = await this.api.get(`/v3/refund/domestic/refunds/${encodeURIComponent(request.outRefundNo)}`);
    if (answer.status === 404 || answer.code === 'RESOURCE_NOT_EXISTS') return { state: 'not_found' };
    if (answer.status !== 200) throw failure('refund query', answer);
    return this.refundState(request, answer);
  }

  private refundState(request: RefundRequest, answer: WechatAnswer): RefundState {
    const refund = answer.data as WechatRefund | undefined;
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
        return { state: 'failed', reason: refund.status };
      case 'ABNORMAL':
        return { state: 'abnormal' };
      default:
        throw new GatewayError(`wechat refund: unknown status ${refund.status}`);
    }
  }

  async closeTrade(outTradeNo: string): Promise<void> {
    const answer = await this.api.post(`/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`, { mchid: this.options.mchid });
    if (answer.status === 204 || answer.status === 200) return;
    const { code } = answer;
    if (code === 'ORDERPAID') throw new TradeAlreadyPaid(outTradeNo);
    if (code === 'ORDER_NOT_EXIST' || code === 'ORDER_CLOSED' || code === 'ORDERCLOSED' || answer.status === 404) return;
    throw failure('close', answer);
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

function failure(operation: string, answer: WechatAnswer): GatewayError {
  return new GatewayError(`wechat ${operation} failed: HTTP ${answer.status} ${answer.code ?? ''}`.trim());
}
