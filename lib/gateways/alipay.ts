import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { AlipaySdk } from 'alipay-sdk';
import { fenToYuan, yuanToFen } from '../domain/money';
import { firstCharacters } from '../domain/text';
import { type Clock, parseGatewayTime, toBeijingDateTime } from '../domain/time';
import { signAppPayOrder } from './alipaySignature';
import {
  GatewayError,
  type PaymentGateway,
  type PrepayRequest,
  type RefundAnswer,
  type RefundRequest,
  type RefundState,
  TradeCloseRefused,
  type TradeState,
} from './paymentGateway';

export interface AlipayOptions {
  appId: string;
  now: Clock;
  appPrivateKeyPem: string;
  alipayPublicKeyPem: string;
  gatewayUrl: string;
  notifyUrl: string;
}

interface AlipayResult {
  code?: string;
  outTradeNo?: string;
  subCode?: string;
  tradeStatus?: string;
  tradeNo?: string;
  totalAmount?: string;
  sendPayDate?: string;
  // alipay.trade.refund and alipay.trade.fastpay.refund.query
  fundChange?: string;
  outRequestNo?: string;
  refundAmount?: string;
  refundStatus?: string;
  gmtRefundPay?: string;
}

/**
 * Refund refusals that will not change however often the same number is sent: the trade is gone
 * (or was never there) or the request contradicts an earlier one with this number. Anything else
 * (SYSTEM_ERROR, the seller's balance, a frozen trade, an unknown code) is retried with the same number.
 */
const FINAL_REFUND_REFUSALS = [
  'ACQ.TRADE_NOT_EXIST',
  'ACQ.TRADE_HAS_CLOSE',
  'ACQ.TRADE_NOT_ALLOW_REFUND',
  'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
  'ACQ.DISCORDANT_REPEAT_REQUEST',
  'ACQ.REASON_TRADE_REFUND_FEE_ERR',
  'ACQ.REFUND_FEE_ERROR',
];

/**
 * Alipay APP payments. The order string is signed locally with node:crypto (no HTTP call, no SDK);
 * query, close and the refunds go to the gateway through alipay-sdk, loaded on the first of them, with
 * the response signature checked (`validateSign`, which the SDK skips by default). Timestamps are
 * passed in Beijing time explicitly: the SDK would use the process time zone, and Lambda runs in UTC.
 */
export class AlipayGateway implements PaymentGateway {
  readonly channel = 'alipay' as const;
  private readonly appPrivateKey: KeyObject;
  private sdkLoaded: Promise<AlipaySdk> | undefined;

  constructor(private readonly options: AlipayOptions) {
    this.appPrivateKey = createPrivateKey(options.appPrivateKeyPem);
  }

  async createPayParam({ outTradeNo, amountFen, subject, expiresAt }: PrepayRequest): Promise<string> {
    return signAppPayOrder(
      {
        appId: this.options.appId,
        timestamp: toBeijingDateTime(this.options.now()),
        notifyUrl: this.options.notifyUrl,
        bizContent: {
          out_trade_no: outTradeNo,
          total_amount: fenToYuan(amountFen),
          subject: firstCharacters(subject, 256),
          product_code: 'QUICK_MSECURITY_PAY',
          time_expire: toBeijingDateTime(expiresAt),
        },
      },
      this.appPrivateKey,
    );
  }

  async queryTrade(outTradeNo: string): Promise<TradeState> {
    const result = await this.exec('alipay.trade.query', { outTradeNo });
    if (result.subCode === 'ACQ.TRADE_NOT_EXIST') return { state: 'not_found' };
    if (result.code !== '10000') throw new GatewayError(`alipay query failed: ${result.code} ${result.subCode ?? ''}`);
    // A signed answer about another trade (a replay) must not settle this one.
    if (result.outTradeNo !== outTradeNo) throw new GatewayError('alipay query answered for another trade');
    switch (result.tradeStatus) {
      case 'TRADE_SUCCESS':
      case 'TRADE_FINISHED': {
        // Without its id and amount it cannot be recorded, as a notification without them is refused.
        const amountFen = yuanToFen(result.totalAmount);
        if (!result.tradeNo || amountFen === undefined) throw new GatewayError('alipay query: a paid trade without trade_no or a readable total_amount');
        const paid = { state: 'paid', transactionId: result.tradeNo, amountFen, paidAt: result.sendPayDate ?? '' } as const;
        // Finished: past the refund period of the merchant's contract.
        return result.tradeStatus === 'TRADE_FINISHED' ? { ...paid, windowClosed: true } : paid;
      }
      case 'WAIT_BUYER_PAY':
        return { state: 'unpaid' };
      case 'TRADE_CLOSED':
        return { state: 'closed' };
      default:
        throw new GatewayError(`alipay query: unknown trade_status ${result.tradeStatus}`);
    }
  }

  async closeTrade(outTradeNo: string): Promise<void> {
    const result = await this.exec('alipay.trade.close', { outTradeNo });
    if (result.code === '10000' || result.subCode === 'ACQ.TRADE_NOT_EXIST') return;
    // TRADE_STATUS_ERROR is Alipay's answer for a paid trade and for one closed already: the caller asks
    // the query which, as a call of its own, so that the sweeping's cap and the metrics count it.
    if (result.subCode === 'ACQ.TRADE_STATUS_ERROR') throw new TradeCloseRefused(`alipay close refused: ${result.code} ${result.subCode}`);
    throw new GatewayError(`alipay close failed: ${result.code} ${result.subCode ?? ''}`);
  }

  async refund(request: RefundRequest): Promise<RefundAnswer> {
    const result = await this.exec('alipay.trade.refund', {
      outTradeNo: request.outTradeNo,
      outRequestNo: request.outRefundNo,
      refundAmount: fenToYuan(request.refundFen),
      refundReason: firstCharacters(request.reason, 256),
    });
    if (result.code === '10000') {
      if (result.outTradeNo !== request.outTradeNo) throw new GatewayError('alipay refund answered for another trade');
      // fund_change N: no money moved by this call, as when the same number was already refunded. Only the query can tell.
      if (result.fundChange !== 'Y') return { state: 'unconfirmed' };
      return { state: 'succeeded', refundedAt: parseGatewayTime(result.gmtRefundPay) };
    }
    // The trade cannot be refunded in its present state (older gateways answer this for finished or
    // closed trades too): the caller asks the trade's query which.
    if (result.subCode === 'ACQ.TRADE_STATUS_ERROR') return { state: 'refused_for_trade_state', reason: result.subCode };
    if (result.subCode === 'ACQ.TRADE_HAS_FINISHED') return { state: 'failed', reason: result.subCode, windowClosed: true };
    if (result.subCode && FINAL_REFUND_REFUSALS.includes(result.subCode)) return { state: 'failed', reason: result.subCode };
    throw new GatewayError(`alipay refund failed: ${result.code} ${result.subCode ?? ''}`);
  }

  /**
   * `refund_status` REFUND_SUCCESS is the only proof of a refund; an answer without it means Alipay did
   * not carry this number out (never received, or failed): it is sent again with the same number.
   */
  async queryRefund(request: RefundRequest): Promise<RefundState> {
    const result = await this.exec('alipay.trade.fastpay.refund.query', {
      outTradeNo: request.outTradeNo,
      outRequestNo: request.outRefundNo,
      queryOptions: ['gmt_refund_pay'],
    });
    if (result.subCode === 'ACQ.TRADE_NOT_EXIST') return { state: 'not_found' };
    if (result.code !== '10000') throw new GatewayError(`alipay refund query failed: ${result.code} ${result.subCode ?? ''}`);
    if (result.refundStatus !== 'REFUND_SUCCESS') return { state: 'not_found' };
    if (result.outTradeNo !== request.outTradeNo || result.outRequestNo !== request.outRefundNo || yuanToFen(result.refundAmount) !== request.refundFen) {
      throw new GatewayError('alipay refund query answered for another refund or amount');
    }
    return { state: 'succeeded', refundedAt: parseGatewayTime(result.gmtRefundPay) };
  }

  private async exec(method: string, bizContent: Record<string, unknown>): Promise<AlipayResult> {
    const sdk = await this.sdk();
    try {
      return (await sdk.exec(method, { timestamp: toBeijingDateTime(this.options.now()), bizContent }, { validateSign: true })) as AlipayResult;
    } catch (error) {
      throw new GatewayError(`alipay ${method}: ${(error as Error).name}`, { cause: sdkFailure(error) });
    }
  }

  /** alipay-sdk, 1 MB of code, read on the first call that goes to Alipay: a pay never needs it. */
  private sdk(): Promise<AlipaySdk> {
    this.sdkLoaded ??= import('alipay-sdk').then(
      ({ AlipaySdk }) =>
        new AlipaySdk({
          appId: this.options.appId,
          privateKey: this.options.appPrivateKeyPem,
          keyType: this.options.appPrivateKeyPem.includes('BEGIN PRIVATE KEY') ? 'PKCS8' : 'PKCS1',
          alipayPublicKey: this.options.alipayPublicKeyPem,
          gateway: this.options.gatewayUrl,
          timeout: 5_000,
        }),
    );
    return this.sdkLoaded;
  }
}

/**
 * What may be logged of an alipay-sdk error: its kind and Alipay's trace id. Its message and
 * `responseDataRaw` can hold the whole answer, the buyer's Alipay account included. (exec's errors
 * carry no code or HTTP status: alipay-sdk 4 sets those on its v3 `curl` API's errors only.)
 */
function sdkFailure(error: unknown): Error {
  const { name, traceId } = (error ?? {}) as { name?: string; traceId?: string };
  const described = new Error([name ?? 'Error', traceId && `traceId ${traceId}`].filter(Boolean).join(', '));
  described.name = name ?? 'Error';
  return described;
}
