import { AttemptInFlight } from '../domain/errors';
import { type Attempt, type AttemptStatus, type Channel, channelOf, type GatewayPayment, LATE_PAYABLE_STATUSES, type Order, samePrice } from '../domain/model';
import { newRefund } from '../domain/refund';
import { type Clock, systemClock } from '../domain/time';
import type { PaymentGateway } from '../gateways/paymentGateway';
import { log } from '../log';
import { metrics } from '../metrics';
import type { PayStore } from '../store/payStore';
import { closeUnpaidTrade } from './closeTrade';
import { retryLostRaces } from './retryLostRaces';

export interface CompletePaymentDeps {
  store: PayStore;
  gateways: Record<Channel, PaymentGateway>;
  now?: Clock;
  /** A refund case's cash is sent back without a person (AUTO_REFUND_DUPLICATES); on unless false. */
  autoRefundDuplicates?: boolean;
}

/** Why an automatic refund is made, as WeChat shows it to the payer. */
export const DUPLICATE_REFUND_REASON = '订单无法接受这笔付款(重复或过期支付),原路退回';

/** The gateway's money for these is recorded already: a payment reported again changes nothing. */
const RECORDED: readonly AttemptStatus[] = ['paid', 'refund_required', 'refunded'];

/**
 * paid: the order is paid by this payment now; duplicate: it was already recorded; conflict: the
 * attempt was paid already under another gateway transaction id (kept for a person, alarmed);
 * refund_required: the money arrived but the order cannot take it (recorded for a refund);
 * unknown_attempt / mismatch: not a payment of ours as we recorded it: nothing changed.
 */
export type CompletionOutcome = 'paid' | 'duplicate' | 'conflict' | 'refund_required' | 'unknown_attempt' | 'mismatch';

/**
 * Records a payment the gateway vouches for, the same way whether it comes from a notification,
 * a status query or the sweeper. Every write is conditional on the state it was decided from; on a
 * lost race it re-reads and decides again, so duplicates and races settle to exactly one outcome.
 *
 * Nor does a payment quoted at another price than the order's now (the order was repriced meanwhile):
 * it is a refund case, and an order paying with it goes back to unpaid.
 *
 * No payment is ignored: for an attempt that was superseded or released (not closed by the shop),
 * the order is paid by it if it still can be (points permitting, closing its other open attempt); otherwise the payment is
 * kept as `refund_required` and, unless automatic refunds are off, its refund is recorded in the same
 * write (the sweeper sends it).
 */
export async function completePayment(deps: CompletePaymentDeps, payment: GatewayPayment, known?: KnownState): Promise<CompletionOutcome> {
  let first = known;
  return retryLostRaces(() => {
    const inHand = first;
    first = undefined;
    return completeOnce(deps, payment, inHand);
  });
}

/**
 * The attempt and its order as the caller has just read them (strongly consistent, the attempt after
 * the order): the first decision starts from them instead of reading both again. A lost race reads afresh.
 */
export interface KnownState {
  attempt: Attempt;
  order: Order;
}

async function completeOnce(deps: CompletePaymentDeps, payment: GatewayPayment, known?: KnownState): Promise<CompletionOutcome> {
  const attempt = known?.attempt ?? (await deps.store.getAttempt(payment.outTradeNo));
  if (!attempt) {
    log.error('payment for an unknown attempt', { out_trade_no: payment.outTradeNo, channel: payment.channel });
    metrics.count('Completion', { outcome: 'unknown_attempt' });
    return 'unknown_attempt';
  }
  if (channelOf(attempt.method) !== payment.channel || attempt.cashFen !== payment.amountFen) {
    log.error('payment does not match its attempt', {
      out_trade_no: attempt.outTradeNo,
      order_id: attempt.orderId,
      channel: payment.channel,
      amount_fen: payment.amountFen,
      expected_fen: attempt.cashFen,
    });
    metrics.count('Completion', { outcome: 'mismatch' });
    return 'mismatch';
  }
  if (RECORDED.includes(attempt.status)) {
    // The same out_trade_no paid again under another transaction: never the order's, never lost.
    if (attempt.transactionId !== undefined && attempt.transactionId !== payment.transactionId) {
      await deps.store.recordPaymentConflict(attempt, payment, stampOf(deps));
      log.error('a second payment of a paid attempt, under another transaction id', {
        out_trade_no: attempt.outTradeNo,
        order_id: attempt.orderId,
        channel: payment.channel,
        transaction_id: payment.transactionId,
        recorded_transaction_id: attempt.transactionId,
      });
      metrics.count('Completion', { outcome: 'conflict' });
      return 'conflict';
    }
    metrics.count('Completion', { outcome: 'duplicate' });
    return 'duplicate';
  }

  // Two plain reads, not one transaction: every write below is conditional on what it was decided from
  // (the order paying with this attempt at its quoted price, the attempt's status, the held points), so a
  // decision from reads that are a moment apart fails its write and is taken again from fresh reads.
  const order = known?.order ?? (await deps.store.getOrder(attempt.orderId));
  const now = stampOf(deps);
  const repriced = isRepriced(attempt, order);
  const isOrdersOpenAttempt = attempt.status === 'open' && order?.status === 'paying' && order.openAttempt?.outTradeNo === attempt.outTradeNo;
  if (isOrdersOpenAttempt && !repriced) {
    await deps.store.captureAttempt(attempt, payment, now);
    log.info('payment captured', { out_trade_no: attempt.outTradeNo, order_id: attempt.orderId });
    metrics.count('Completion', { outcome: 'captured' });
    return 'paid';
  }

  // Money for an attempt whose hold is gone: the order takes it if it still can, the other attempt gives way.
  if (!repriced && LATE_PAYABLE_STATUSES.includes(attempt.status) && order && (order.status === 'unpaid' || order.status === 'paying')) {
    return payLateOrRefund(deps, attempt, payment, now);
  }
  return recordForRefund(deps, attempt, payment, now, { repriced, orderStatus: order?.status, releaseOrder: isOrdersOpenAttempt });
}

/**
 * A released attempt's money: its order takes it if it still can (points permitting, its other open
 * attempt closed first). Order and points are read in one transaction here: which attempt the order is
 * paying with and the points that attempt holds must be seen at one instant to add up.
 */
async function payLateOrRefund(deps: CompletePaymentDeps, attempt: Attempt, payment: GatewayPayment, now: string): Promise<CompletionOutcome> {
  const { order, account } = await deps.store.loadSettlementContext(attempt);
  const repriced = isRepriced(attempt, order);
  let at = stampOf(deps);
  if (!repriced && order && (order.status === 'unpaid' || order.status === 'paying')) {
    const other = order.status === 'paying' ? order.openAttempt : undefined;
    const pointsWithin = (account?.available ?? 0) + (other?.points ?? 0) >= attempt.points;
    const closed = pointsWithin && other ? await closeUnpaidTrade(deps.gateways, other, new Date(now)) : 'closed';
    // Its prepay may still be on the way: decide when it has landed (the gateway resends, the sweeper asks).
    if (closed === 'in_flight' && other) throw new AttemptInFlight(other.outTradeNo);
    // Stamped again after the gateway calls, so that this write's event sorts after one written while
    // they were on their way (the other attempt's own capture).
    if (pointsWithin && other) at = stampOf(deps);
    if (pointsWithin && closed === 'closed') {
      await deps.store.payWithReleasedAttempt(attempt, payment, other, at);
      log.warn('order paid by a released attempt', { out_trade_no: attempt.outTradeNo, order_id: attempt.orderId, superseded: other?.outTradeNo });
      metrics.count('Completion', { outcome: 'paid_late' });
      return 'paid';
    }
  }
  // A released attempt is never an order's open attempt again: the order is not released with it.
  return recordForRefund(deps, attempt, payment, at, { repriced, orderStatus: order?.status, releaseOrder: false });
}

/**
 * The time of a write and of its event, taken after the reads the write is decided from: the outbox sends
 * an order's events by it, so the event must sort after the changes those reads saw.
 */
function stampOf(deps: Pick<CompletePaymentDeps, 'now'>): string {
  return (deps.now ?? systemClock)().toISOString();
}

/** Money quoted at another price than the order's now never pays it: the buyer paid for what was shown then. */
function isRepriced(attempt: Attempt, order: Order | undefined): boolean {
  return order !== undefined && attempt.quotedPrice !== undefined && !samePrice(attempt.quotedPrice, order);
}

/**
 * Money the order cannot take: kept as `refund_required`, with its refund recorded in the same write
 * unless automatic refunds are off. `releaseOrder`: the order is paying with this attempt (repriced since).
 */
async function recordForRefund(
  deps: CompletePaymentDeps,
  attempt: Attempt,
  payment: GatewayPayment,
  now: string,
  why: { repriced: boolean; orderStatus?: Order['status']; releaseOrder: boolean },
): Promise<CompletionOutcome> {
  const refund = deps.autoRefundDuplicates === false ? undefined : newRefund(attempt, 'duplicate', DUPLICATE_REFUND_REASON, new Date(now));
  await deps.store.markRefundRequired(attempt, payment, now, refund, why.releaseOrder);
  log.error('payment needs a refund', {
    out_trade_no: attempt.outTradeNo,
    order_id: attempt.orderId,
    repriced: why.repriced,
    order_status: why.orderStatus,
    attempt_status: attempt.status,
    out_refund_no: refund?.outRefundNo,
  });
  metrics.count('Completion', { outcome: 'refund_required' });
  if (refund) metrics.count('Refund', { kind: 'duplicate', outcome: 'requested' });
  return 'refund_required';
}
