import { alipayError } from './alipayReply';
import type { SandboxCredentials } from './credentials';
import type { Reply } from './reply';
import type { SandboxTrade } from './trade';
import type { TradeBook } from './tradeBook';

/** Alipay's amount format: a string of yuan, nothing around the digits, at most two decimals. */
export const ALIPAY_AMOUNT = /^(0|[1-9]\d{0,8})(\.\d{1,2})?$/;

/** `biz_content` as sent; undefined when it is not JSON. */
export function parseBizContent(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** What a trade method's request names: its biz_content, and the trade it means, if Alipay holds one. */
export interface NamedTrade {
  biz: Record<string, unknown>;
  trade?: SandboxTrade;
  /** As sent, or the trade's when it was named by `trade_no`. */
  outTradeNo?: string;
}

/**
 * The trade a request's biz_content names by `out_trade_no` or `trade_no` (`trade_no` wins when both are
 * given, as Alipay documents), or the refusal of a request that names none.
 */
export function tradeNamedBy(
  creds: SandboxCredentials['alipay'],
  trades: TradeBook,
  method: string,
  params: Record<string, string>,
): NamedTrade | { refusal: Reply } {
  const biz = parseBizContent(params.biz_content ?? '{}');
  if (!biz) return { refusal: alipayError(creds, method, '40002', 'isv.invalid-parameter', 'biz_content 不是合法的 JSON') };
  const outTradeNo = typeof biz.out_trade_no === 'string' && biz.out_trade_no ? biz.out_trade_no : undefined;
  const tradeNo = typeof biz.trade_no === 'string' && biz.trade_no ? biz.trade_no : undefined;
  if (!outTradeNo && !tradeNo)
    return { refusal: alipayError(creds, method, '40004', 'ACQ.INVALID_PARAMETER', '参数无效: out_trade_no 与 trade_no 不能同时为空') };
  const trade = tradeNo ? trades.getAlipayByTradeNo(tradeNo) : trades.get('alipay', outTradeNo!);
  return { biz, trade, outTradeNo: outTradeNo ?? trade?.outTradeNo };
}

/** Alipay's `trade_status` for a trade: a paid trade refunded in full is TRADE_CLOSED, one past its refund period TRADE_FINISHED. */
export function alipayTradeStatus(trade: SandboxTrade): 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_FINISHED' | 'TRADE_CLOSED' {
  if (trade.status === 'UNPAID') return 'WAIT_BUYER_PAY';
  if (trade.status === 'CLOSED' || (trade.refundedFen ?? 0) >= trade.amountFen) return 'TRADE_CLOSED';
  return trade.finishedAt ? 'TRADE_FINISHED' : 'TRADE_SUCCESS';
}
