import { alipayBuyer, wechatOpenid, wechatTransactionId } from './randomIds';
import { SandboxGatewayError } from './sandboxGatewayError';
import type { SandboxChannel, SandboxPayment, SandboxTrade } from './trade';

/**
 * The trades the sandbox holds, in memory, and the changes made to them. Each gateway keeps its own
 * book, as the real ones do: an `out_trade_no` is the merchant's, who may use one at both.
 *
 * @example
 * const trades = new TradeBook();
 * trades.add(trade);
 * trades.pay(trade.outTradeNo); // { channel, transactionId, amountFen }
 */
export class TradeBook {
  private readonly books: Record<SandboxChannel, Map<string, SandboxTrade>> = { wechat: new Map(), alipay: new Map() };

  /** The trade itself, not a copy: the gateway's protocol changes it. */
  get(channel: SandboxChannel, outTradeNo: string): SandboxTrade | undefined {
    return this.books[channel].get(outTradeNo);
  }

  /** Alipay finds a trade by its own `trade_no` too. */
  getAlipayByTradeNo(tradeNo: string): SandboxTrade | undefined {
    return this.getByTransactionId('alipay', tradeNo);
  }

  /** A trade by the gateway's own id for it: WeChat `transaction_id`, Alipay `trade_no`. */
  getByTransactionId(channel: SandboxChannel, transactionId: string): SandboxTrade | undefined {
    return [...this.books[channel].values()].find((trade) => trade.transactionId === transactionId);
  }

  add(trade: SandboxTrade): void {
    this.books[trade.channel].set(trade.outTradeNo, trade);
  }

  /** The trade under `outTradeNo` at whichever gateway holds it; throws AMBIGUOUS_TRADE when both do. */
  find(outTradeNo: string): SandboxTrade | undefined {
    const wechat = this.books.wechat.get(outTradeNo);
    const alipay = this.books.alipay.get(outTradeNo);
    if (wechat && alipay) throw new SandboxGatewayError('AMBIGUOUS_TRADE', `${outTradeNo} exists on both channels`, 409);
    return wechat ?? alipay;
  }

  /** A copy of {@link find}'s trade: changing it changes nothing in the book. */
  snapshot(outTradeNo: string): SandboxTrade | undefined {
    const trade = this.find(outTradeNo);
    return trade && structuredClone(trade);
  }

  /** The user pays, as the gateway records it; paying a paid trade again changes nothing. */
  pay(outTradeNo: string): SandboxPayment {
    const trade = this.find(outTradeNo);
    if (!trade) throw new SandboxGatewayError('TRADE_NOT_FOUND', `no trade ${outTradeNo}: WeChat needs a prepay, Alipay a registered order string`, 404);
    if (trade.status === 'CLOSED') throw new SandboxGatewayError('TRADE_CLOSED', `trade ${outTradeNo} is closed`, 409);
    if (trade.status === 'UNPAID') {
      if (trade.timeExpire && Date.parse(trade.timeExpire) < Date.now()) {
        throw new SandboxGatewayError('TRADE_EXPIRED', `trade ${outTradeNo} expired at ${trade.timeExpire}`, 409);
      }
      trade.status = 'PAID';
      trade.paidAt = new Date().toISOString();
      if (trade.channel === 'wechat') {
        trade.transactionId = wechatTransactionId();
        trade.payer = { openid: wechatOpenid() };
      } else {
        trade.payer = alipayBuyer();
      }
    }
    return { channel: trade.channel, transactionId: trade.transactionId!, amountFen: trade.amountFen };
  }

  /** The merchant closes an unpaid trade. */
  close(trade: SandboxTrade): void {
    trade.status = 'CLOSED';
    trade.closedAt = new Date().toISOString();
  }

  /** The paid trade under `outTradeNo`, itself; throws TRADE_NOT_FOUND / TRADE_NOT_PAID. */
  private paid(outTradeNo: string, channel?: SandboxChannel): SandboxTrade {
    const trade = channel ? this.get(channel, outTradeNo) : this.find(outTradeNo);
    if (!trade) throw new SandboxGatewayError('TRADE_NOT_FOUND', `no ${channel ? `${channel} ` : ''}trade ${outTradeNo}`, 404);
    if (trade.status !== 'PAID') throw new SandboxGatewayError('TRADE_NOT_PAID', `trade ${outTradeNo} is ${trade.status}, not PAID`, 409);
    return trade;
  }

  /** Moves a paid trade's payment back in time (WeChat refunds nothing paid more than a year ago). Returns a copy. */
  backdatePayment(outTradeNo: string, paidAt: Date): SandboxTrade {
    if (Number.isNaN(paidAt.getTime())) throw new SandboxGatewayError('INVALID_REQUEST', 'paidAt is not a date');
    const trade = this.paid(outTradeNo);
    trade.paidAt = paidAt.toISOString();
    return structuredClone(trade);
  }

  /** Alipay ends a paid trade's refund period: TRADE_FINISHED, no refund any more. Returns a copy. */
  finishAlipayTrade(outTradeNo: string): SandboxTrade {
    const trade = this.paid(outTradeNo, 'alipay');
    trade.finishedAt ??= new Date().toISOString();
    return structuredClone(trade);
  }
}
