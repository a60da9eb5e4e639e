import type { SandboxChannel } from './trade';

/**
 * WeChat's refund states (`status` / `refund_status`). An Alipay refund (alipay.trade.refund) is synchronous:
 * it is SUCCESS as soon as it exists.
 */
export type SandboxRefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

/**
 * How the next refund at a gateway goes wrong (`failNextRefund`); taken by a refund that would be created,
 * never by a repeat of an existing one or by a refusal:
 * - `'balance'`: refused, nothing refunded, a retry later works: WeChat HTTP 403 `NOT_ENOUGH`, Alipay
 *   40004 `ACQ.SELLER_BALANCE_NOT_ENOUGH`.
 * - `'abnormal'` (WeChat only): accepted, then ABNORMAL (`REFUND.ABNORMAL` notification): the payer's account
 *   cannot take it; its money stays with WeChat (not refundable again) until the merchant sends it on
 *   (`resumeAbnormalRefund`), and then it succeeds.
 * - `'closed'` (WeChat only): accepted, then CLOSED (`REFUND.CLOSED` notification); nothing refunded.
 * - `'silent'`: the refund succeeds, but its notification is never sent.
 */
export type SandboxRefundFailure = 'balance' | 'abnormal' | 'closed' | 'silent';

/** How refunds move on; `startSandboxGateway({ refunds })` and `gateway.refundSettings(patch)` change them. */
export interface SandboxRefundSettings {
  /**
   * WeChat: `'delayed'` (default) answers the create PROCESSING and settles the refund `settleAfterMs` later,
   * then notifies; `'immediate'` answers with the settled refund (SUCCESS) and notifies right after.
   */
  wechatMode: 'delayed' | 'immediate';
  /** How long a WeChat refund stays PROCESSING, and how long after an Alipay refund its notification is sent. Default 200. */
  settleAfterMs: number;
  /**
   * Whether Alipay sends its `trade_status_sync` notification after a refund (default true). Real Alipay sends
   * it only to merchants who asked for it (the TRADE_CLOSED notification is off by default).
   */
  alipayNotify: boolean;
}

export const DEFAULT_REFUND_SETTINGS: Readonly<SandboxRefundSettings> = Object.freeze({ wechatMode: 'delayed', settleAfterMs: 200, alipayNotify: true });

/** One attempt to deliver a refund notification: the merchant's answer, or why there was none. */
export interface SandboxNotificationRecord {
  url: string;
  /** ISO 8601 instant. */
  sentAt: string;
  status?: number;
  body?: string;
  /** The connection failed or timed out. */
  error?: string;
}

/** One refund as the sandbox holds it. */
export interface SandboxRefund {
  channel: SandboxChannel;
  /** The refunded trade's `out_trade_no` (also when the merchant named it by `transaction_id` / `trade_no`). */
  outTradeNo: string;
  /** WeChat `out_refund_no` (unique per merchant) / Alipay `out_request_no` (unique per trade). */
  outRefundNo: string;
  /** WeChat `refund_id`; Alipay gives a refund no id of its own. */
  refundId?: string;
  amountFen: number;
  status: SandboxRefundStatus;
  reason?: string;
  /** Where its notification goes: WeChat the refund's `notify_url`, Alipay the payment's. */
  notifyUrl?: string;
  /** ISO 8601 instants. */
  createdAt: string;
  succeededAt?: string;
  /** What the merchant sent: the WeChat body, or the Alipay `biz_content`. */
  request: Record<string, unknown>;
  /** Set once the gateway has sent (or tried to send) its notification. */
  notification?: SandboxNotificationRecord;
}
