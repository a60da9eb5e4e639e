import { RefundRefused } from '../domain/errors';
import type { Attempt, Order, Refund, RefundKind } from '../domain/model';
import { ABNORMAL, failedForWindow, newRefund, refundWindowClosed } from '../domain/refund';
import { systemClock } from '../domain/time';
import { log } from '../log';
import { metrics } from '../metrics';
import { WriteConflict } from '../store/payStore';
import type { CompletePaymentDeps } from './completePayment';
import { followUpRefund } from './followUpRefund';
import { refundLogFields, reportRefundSucceeded } from './recordRefundResult';
import { retryLostRaces } from './retryLostRaces';

export interface RefundAsk {
  orderId: number;
  /** Shown to the payer by WeChat; kept on the refund. */
  reason: string;
  /** A refund case of the order (`refund_required`) rather than the order's own payment. */
  outTradeNo?: string;
  /**
   * The cash was repaid outside the gateways, and how (a bank transfer's reference, say): recorded as a
   * refund that succeeded, with no gateway call, so that the order is refunded and its points come back.
   */
  repaidOutside?: string;
}

/** The order after the refund was asked, and the refund as it stands (pending, or final already). */
export interface RefundAnswer {
  order: Order;
  refund: Refund;
}

/**
 * An operator's refund: a paid order in full (cash through its gateway, points back to available), or
 * a refund case of the order that was not refunded automatically or whose refund failed. The refund is
 * recorded before the gateway is called (so a crash in between leaves a pending refund that the
 * sweeper sends, with the same number), then sent once at once. Asking again while it is pending is
 * refused; asking after it succeeded answers the refund that was made; only after a final failure is a
 * new refund, with a new number, made. A refund a person repaid outside the gateways is recorded done
 * at once (meant for a payment its gateway can no longer refund: a closed window, a failed refund);
 * refused while the gateway could still pay a refund of it too (pending, or recorded ABNORMAL before
 * the migration), and refused once it was refunded through its gateway (the payer would have it twice).
 *
 * @throws RefundRefused for everything the operator should read
 */
export async function requestRefund(deps: CompletePaymentDeps, ask: RefundAsk): Promise<RefundAnswer> {
  log.bind({ order_id: ask.orderId });
  let decided: RefundAnswer | { begun: Refund };
  try {
    decided = await retryLostRaces(() => beginOnce(deps, ask));
  } catch (error) {
    // Lost three races in a row: someone else is refunding it right now.
    if (error instanceof WriteConflict) throw new RefundRefused('REFUND_IN_PROGRESS', undefined, { cause: error });
    throw error;
  }
  if (!('begun' in decided)) return decided;

  const refund = decided.begun;
  log.bind({ out_trade_no: refund.outTradeNo });
  log.info('refund asked', { ...refundLogFields(refund), points: refund.points });
  metrics.count('Refund', { kind: refund.kind, outcome: 'requested' });
  // Points only: refunded in the write that began it, with no gateway to wait for.
  if (refund.status === 'succeeded') reportRefundSucceeded(refund);
  if (refund.status === 'pending') {
    try {
      await followUpRefund(deps, refund);
    } catch (error) {
      // Recorded pending: the sweeper sends it at its next run. The answer says pending, which is true.
      log.error('first refund call failed; the sweeper follows it up', refundLogFields(refund), error);
    }
  }
  const answer = await currentState(deps, refund.orderId, refund.outRefundNo);
  if (failedForWindow(answer.refund)) throw new RefundRefused('REFUND_WINDOW_CLOSED', answer.refund.failureReason);
  if (answer.refund.status === 'failed') throw new RefundRefused('REFUND_FAILED', answer.refund.failureReason);
  return answer;
}

async function beginOnce(deps: CompletePaymentDeps, ask: RefundAsk): Promise<RefundAnswer | { begun: Refund }> {
  const order = await deps.store.getOrder(ask.orderId);
  if (!order) throw new RefundRefused('ORDER_NOT_FOUND');
  const { attempt, kind } = await attemptToRefund(deps, order, ask.outTradeNo);

  const previous = attempt.refundNo ? await deps.store.getRefund(attempt.refundNo) : undefined;
  const outside = ask.repaidOutside !== undefined;
  if (previous?.status === 'pending') throw new RefundRefused('REFUND_IN_PROGRESS', previous.outRefundNo);
  // Recorded failed with ABNORMAL by the code of before 2026-11-30: its money may still be waiting at
  // WeChat for a person to send it on (README "When a refund failed"). Unless a person noted it handled:
  // they dealt with that money, and the migration leaves such a refund alone, so only this can record it.
  if (outside && previous?.failureReason === ABNORMAL && previous.handledNote === undefined) {
    throw new RefundRefused('REFUND_IN_PROGRESS', `${previous.outRefundNo}: ABNORMAL, npm run migrate:abnormal-refunds`);
  }
  // Paid back outside the gateways by a person (only a failed refund can be noted so): another refund
  // through the gateway would pay the payer twice; recording that repayment pays nothing.
  if (previous?.handledNote !== undefined && !outside) {
    throw new RefundRefused('REFUND_HANDLED', `${previous.outRefundNo}: ${previous.handledNote}`);
  }
  if (previous?.status === 'succeeded' || attempt.status === 'refunded') {
    if (!previous) throw new Error(`attempt ${attempt.outTradeNo} is refunded without a refund`);
    if (outside && previous.repaidOutside === undefined) throw new RefundRefused('ALREADY_REFUNDED', previous.outRefundNo);
    return { order, refund: previous };
  }

  const now = (deps.now ?? systemClock)();
  if (outside && attempt.cashFen === 0) throw new RefundRefused('NO_CASH_PAID');
  if (!outside && refundWindowClosed(attempt, now)) throw new RefundRefused('REFUND_WINDOW_CLOSED', `支付于${attempt.paidAt}`);
  const refund = newRefund(attempt, kind, ask.reason, now, ask.repaidOutside);
  await deps.store.beginRefund(refund, attempt, now.toISOString());
  return { begun: refund };
}

/** The order's paid attempt, or the refund case it names; refused unless it holds money to give back. */
async function attemptToRefund(deps: CompletePaymentDeps, order: Order, outTradeNo?: string): Promise<{ attempt: Attempt; kind: RefundKind }> {
  if (outTradeNo) {
    const attempt = await deps.store.getAttempt(outTradeNo);
    if (!attempt || attempt.orderId !== order.orderId) throw new RefundRefused('ATTEMPT_NOT_FOUND', outTradeNo);
    if (attempt.outTradeNo !== order.paidAttempt) {
      const isCase = attempt.status === 'refund_required' || (attempt.status === 'refunded' && attempt.refundNo !== undefined);
      if (!isCase) throw new RefundRefused('NOT_REFUNDABLE', `这笔支付的状态是 ${attempt.status}`);
      return { attempt, kind: 'duplicate' };
    }
  }
  switch (order.status) {
    case 'refunding':
      throw new RefundRefused('REFUND_IN_PROGRESS', order.refund?.outRefundNo);
    case 'paid':
    case 'refunded': {
      // Imported as paid (paid outside paynow): there is no payment of ours to send back.
      if (!order.paidAttempt) throw new RefundRefused('NOT_REFUNDABLE', '订单不是经本系统支付的,请在原支付渠道退款');
      const attempt = await deps.store.getAttempt(order.paidAttempt);
      if (!attempt) throw new Error(`order ${order.orderId} is ${order.status} without its attempt`);
      return { attempt, kind: 'order' };
    }
    default:
      throw new RefundRefused('ORDER_NOT_PAID', `订单状态 ${order.status}`);
  }
}

async function currentState(deps: CompletePaymentDeps, orderId: number, outRefundNo: string): Promise<RefundAnswer> {
  const [order, refund] = await Promise.all([deps.store.getOrder(orderId), deps.store.getRefund(outRefundNo)]);
  if (!order || !refund) throw new Error(`order ${orderId} or refund ${outRefundNo} vanished`);
  return { order, refund };
}
