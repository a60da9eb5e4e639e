/** The gateway a trade is held by. */
export type SandboxChannel = 'wechat' | 'alipay';

/**
 * One closed set for both channels; each protocol maps it to its own words (NOTPAY, WAIT_BUYER_PAY, ...).
 * Refunds do not change it: a refunded trade is PAID with `refundedFen` (WeChat shows REFUND once all of it is
 * refunded, Alipay TRADE_CLOSED).
 */
export type SandboxTradeStatus = 'UNPAID' | 'PAID' | 'CLOSED';

/** One trade as the sandbox holds it: what a gateway knows of one `out_trade_no`. */
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
  /** Fen refunded so far (successful refunds only); absent before the first one. */
  refundedFen?: number;
  /** Alipay: the trade is TRADE_FINISHED, its refund period over (ISO 8601 instant). */
  finishedAt?: string;
  /** What the merchant sent: the WeChat prepay body, or the Alipay order-string params with `biz_content` parsed. */
  request: Record<string, unknown>;
}

/** What the user paying a trade leaves: the gateway's id for the payment. */
export interface SandboxPayment {
  channel: SandboxChannel;
  transactionId: string;
  amountFen: number;
}
