import { wechatRefundId } from './randomIds';
import type { SandboxRefund } from './refund';
import type { SandboxChannel, SandboxTrade } from './trade';

/** What the merchant asks for when it opens a refund; the rest the gateway adds. */
export interface RefundRequest {
  outRefundNo: string;
  amountFen: number;
  reason?: string;
  notifyUrl?: string;
  request: Record<string, unknown>;
}

/**
 * The refunds the sandbox holds, in memory, and what they do to their trades. A WeChat `out_refund_no` is
 * unique per merchant; an Alipay `out_request_no` only per trade. A refund counts against its trade's
 * refundable amount while PROCESSING, SUCCESS or ABNORMAL (WeChat keeps an abnormal refund's money in its
 * refund account until the merchant sends it on: https://pay.weixin.qq.com/doc/v3/merchant/4013071031);
 * a CLOSED one gives it back.
 *
 * @example
 * const refunds = new RefundBook();
 * const refund = refunds.open(trade, { outRefundNo: 'R1', amountFen: 100, request: body });
 * refunds.settle(trade, refund, 'SUCCESS'); // trade.refundedFen += 100
 */
export class RefundBook {
  private readonly books: Record<SandboxChannel, Map<string, SandboxRefund>> = { wechat: new Map(), alipay: new Map() };

  private static key(channel: SandboxChannel, outTradeNo: string, outRefundNo: string): string {
    return channel === 'wechat' ? outRefundNo : `${outTradeNo}\n${outRefundNo}`;
  }

  /** The refund itself, not a copy: WeChat by `out_refund_no` alone, Alipay by trade and `out_request_no`. */
  get(channel: SandboxChannel, outTradeNo: string, outRefundNo: string): SandboxRefund | undefined {
    return this.books[channel].get(RefundBook.key(channel, outTradeNo, outRefundNo));
  }

  /** A WeChat refund by its `out_refund_no`. */
  getWechat(outRefundNo: string): SandboxRefund | undefined {
    return this.books.wechat.get(outRefundNo);
  }

  /** Copies of the refunds of every trade numbered `outTradeNo` (at either gateway), oldest first. */
  ofTrade(outTradeNo: string): SandboxRefund[] {
    return [...this.books.wechat.values(), ...this.books.alipay.values()]
      .filter((refund) => refund.outTradeNo === outTradeNo)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map((refund) => structuredClone(refund));
  }

  /** Fen of `trade` neither refunded nor being refunded. */
  refundableFen(trade: SandboxTrade): number {
    let taken = 0;
    for (const refund of this.books[trade.channel].values()) {
      if (refund.outTradeNo === trade.outTradeNo && refund.status !== 'CLOSED') taken += refund.amountFen;
    }
    return trade.amountFen - taken;
  }

  /** A new PROCESSING refund of `trade`; the caller has checked that it may be made. */
  open(trade: SandboxTrade, request: RefundRequest): SandboxRefund {
    const refund: SandboxRefund = {
      channel: trade.channel,
      outTradeNo: trade.outTradeNo,
      outRefundNo: request.outRefundNo,
      ...(trade.channel === 'wechat' ? { refundId: wechatRefundId() } : {}),
      amountFen: request.amountFen,
      status: 'PROCESSING',
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      ...(request.notifyUrl === undefined ? {} : { notifyUrl: request.notifyUrl }),
      createdAt: new Date().toISOString(),
      request: structuredClone(request.request),
    };
    this.books[trade.channel].set(RefundBook.key(trade.channel, trade.outTradeNo, refund.outRefundNo), refund);
    return refund;
  }

  /**
   * A PROCESSING refund ends; a successful one adds to its trade's `refundedFen`. Settling a settled refund
   * changes nothing, except an ABNORMAL one the merchant has sent on (`resume`), which is PROCESSING again.
   */
  settle(trade: SandboxTrade, refund: SandboxRefund, status: 'SUCCESS' | 'CLOSED' | 'ABNORMAL'): void {
    if (refund.status !== 'PROCESSING') return;
    refund.status = status;
    if (status === 'SUCCESS') {
      refund.succeededAt = new Date().toISOString();
      trade.refundedFen = (trade.refundedFen ?? 0) + refund.amountFen;
    }
  }

  /** An ABNORMAL refund sent on by the merchant (发起异常退款): PROCESSING again. False for a refund in any other state. */
  resume(refund: SandboxRefund): boolean {
    if (refund.status !== 'ABNORMAL') return false;
    refund.status = 'PROCESSING';
    return true;
  }
}
