import { type Attempt, channelOf, type Refund, type RefundKind } from './model';

/**
 * `<out_trade_no>R<n>`: the n-th refund of an attempt (at most 35 characters of [0-9TR], within both
 * gateways' 64). A new number only follows a refund that finally failed.
 *
 * @example refundNumber('1001T17000000000000042') === '1001T17000000000000042R1'
 */
export function refundNumber(outTradeNo: string, previous?: string): string {
  const n = previous ? Number(/R(\d+)$/.exec(previous)?.[1] ?? 0) + 1 : 1;
  return `${outTradeNo}R${n}`;
}

/**
 * Minutes until the next follow-up of a refund after `checks` of them, as WeChat suggests for its
 * refund query: every minute for the first five, then 5, 10, 20, 30, then hourly.
 */
const FOLLOW_UP_MINUTES = [1, 1, 1, 1, 1, 5, 10, 20, 30];
const LAST_FOLLOW_UP_MINUTES = 60;

export function nextCheckAt(checks: number, now: Date): string {
  const minutes = FOLLOW_UP_MINUTES[checks] ?? LAST_FOLLOW_UP_MINUTES;
  return new Date(now.getTime() + minutes * 60_000).toISOString();
}

/** The `last_error` of a pending refund WeChat reports ABNORMAL: a person must send it on at WeChat. */
export const ABNORMAL = 'ABNORMAL';

/** WeChat refuses refunds of payments made more than a year ago. Alipay's window is the merchant's contract: only Alipay can tell. */
const WECHAT_REFUND_WINDOW_MS = 365 * 24 * 60 * 60_000;

/** A failed refund's reason as recorded: the gateway's, marked when the payment is past its refund window. */
const WINDOW_CLOSED = 'WINDOW_CLOSED';

export function failureReason(refusal: { reason: string; windowClosed?: boolean }): string {
  return refusal.windowClosed ? `${WINDOW_CLOSED} ${refusal.reason}` : refusal.reason;
}

export function failedForWindow(refund: Pick<Refund, 'status' | 'failureReason'>): boolean {
  return refund.status === 'failed' && (refund.failureReason?.startsWith(WINDOW_CLOSED) ?? false);
}

export function refundWindowClosed(attempt: Pick<Attempt, 'method' | 'paidAt'>, now: Date): boolean {
  if (channelOf(attempt.method) !== 'wechat' || !attempt.paidAt) return false;
  return now.getTime() - Date.parse(attempt.paidAt) >= WECHAT_REFUND_WINDOW_MS;
}

/**
 * The whole of an attempt going back: its cash through its gateway and, for an order refund, its
 * points (a refund case's points were never taken). Pending until the gateway says otherwise; a
 * points-only refund is done the moment it is written, and so is one whose cash a person repaid
 * outside the gateways (`repaidOutside`: how).
 */
export function newRefund(attempt: Attempt, kind: RefundKind, reason: string, now: Date, repaidOutside?: string): Refund {
  const points = kind === 'order' ? attempt.points : 0;
  const toGateway = attempt.cashFen > 0 && repaidOutside === undefined;
  return {
    outRefundNo: refundNumber(attempt.outTradeNo, attempt.refundNo),
    outTradeNo: attempt.outTradeNo,
    orderId: attempt.orderId,
    userId: attempt.userId,
    kind,
    channel: channelOf(attempt.method),
    cashFen: attempt.cashFen,
    totalFen: attempt.cashFen,
    points,
    reason,
    status: toGateway ? 'pending' : 'succeeded',
    accepted: false,
    checks: 0,
    nextCheckAt: toGateway ? now.toISOString() : undefined,
    createdAt: now.toISOString(),
    refundedAt: toGateway ? undefined : now.toISOString(),
    ...(repaidOutside === undefined ? {} : { repaidOutside }),
  };
}
