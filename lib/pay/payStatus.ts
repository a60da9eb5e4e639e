import { PayError } from '../domain/errors';
import type { Attempt, AttemptSummary, Order, OrderStatus, PayMethod, RefundStatus, RefundSummary } from '../domain/model';
import { fenToYuan } from '../domain/money';
import { systemClock, toBeijingRfc3339 } from '../domain/time';
import { log } from '../log';
import { APP_GATEWAY_CHECK_INTERVAL_MS } from './appGatewayChecks';
import type { CompletePaymentDeps } from './completePayment';
import { settleFromGateway } from './settleFromGateway';

/** The order's latest refund as the app sees it: amounts as paid back, times in Beijing time. */
export interface RefundStatusView {
  status: RefundStatus;
  refund_price: string;
  refund_integral: number;
  refunded_at: string | null;
}

/** The `data` of GET /order/pay/status. Pay fields are null when the order has no current attempt; times are Beijing time. */
export interface PayStatus {
  order_id: number;
  order_status: OrderStatus;
  pay_method: PayMethod | null;
  pay_price: string | null;
  pay_integral: number | null;
  out_trade_no: string | null;
  paid_at: string | null;
  /** null until a refund of the order was asked for. */
  refund: RefundStatusView | null;
}

/** The pay sheet's own result is no proof: an attempt this old without a notification is checked at the gateway. */
const QUERY_AFTER_MS = 60_000;

/**
 * The order's pay status for the app, after the pay sheet closes. For an order still paying with an
 * attempt older than a minute, the gateway is asked first and a payment it reports is recorded.
 *
 * Round trips to the table: the order alone while its attempt is young (the order's summary of its
 * open attempt says all the answer needs); then the claim of the gateway check, the attempt, and the
 * capture when the gateway says paid: four in all, and the answer is the state that capture wrote.
 */
export async function getPayStatus(deps: CompletePaymentDeps, userId: number, orderId: number): Promise<PayStatus> {
  log.bind({ order_id: orderId });
  const order = await deps.store.getOrder(orderId);
  if (!order || order.userId !== userId) throw new PayError('ORDER_NOT_FOUND');

  const open = order.status === 'paying' ? order.openAttempt : undefined;
  if (!open) {
    const paid = order.paidAttempt ? await deps.store.getAttempt(order.paidAttempt) : undefined;
    if (paid) log.bind({ out_trade_no: paid.outTradeNo });
    return statusOf(order, paid);
  }
  log.bind({ out_trade_no: open.outTradeNo });
  // The order is paying with it, so it is open: they leave that state in one write.
  const now = (deps.now ?? systemClock)().getTime();
  if (now - Date.parse(open.createdAt) <= QUERY_AFTER_MS) return statusOf(order, open);

  try {
    if (!(await deps.store.claimGatewayCheck(open.outTradeNo, new Date(now), APP_GATEWAY_CHECK_INTERVAL_MS))) return statusOf(order, open);
    const attempt = await deps.store.getAttempt(open.outTradeNo);
    // Gone or moved on since the order was read: the table has news, read it again.
    if (attempt?.status !== 'open') return await readStatus(deps, orderId, order);
    const { outcome, payment } = await settleFromGateway(deps, attempt, { attempt, order });
    // Exactly what the capture wrote: the order paid by this attempt.
    if (outcome === 'paid' && payment) {
      const { openAttempt: _settled, ...paidOrder } = order;
      const paid: Attempt = { ...attempt, status: 'paid', paidAt: payment.paidAt, transactionId: payment.transactionId };
      return statusOf({ ...paidOrder, status: 'paid', paidAttempt: attempt.outTradeNo }, paid);
    }
    if (outcome) return await readStatus(deps, orderId, order);
  } catch (error) {
    // Whatever went wrong (gateway, a lost race), the stored state is still a true answer; the sweeper will ask again.
    log.warn('status check at the gateway failed', { out_trade_no: open.outTradeNo }, error);
  }
  return statusOf(order, open);
}

/** An order paying: its open attempt's summary (open, so not paid) says as much as the attempt. */
function statusOf(order: Order, attempt: (AttemptSummary & Pick<Attempt, 'paidAt'>) | undefined): PayStatus {
  return {
    order_id: order.orderId,
    order_status: order.status,
    pay_method: attempt?.method ?? null,
    pay_price: attempt ? fenToYuan(attempt.cashFen) : null,
    pay_integral: attempt?.points ?? null,
    out_trade_no: attempt?.outTradeNo ?? null,
    paid_at: attempt?.paidAt ? toBeijingRfc3339(new Date(attempt.paidAt)) : null,
    refund: order.refund ? refundView(order.refund) : null,
  };
}

function refundView(refund: RefundSummary): RefundStatusView {
  return {
    status: refund.status,
    refund_price: fenToYuan(refund.cashFen),
    refund_integral: refund.points,
    refunded_at: refund.refundedAt ? toBeijingRfc3339(new Date(refund.refundedAt)) : null,
  };
}

/** The status as stored now: the order and its current attempt (the one it is paying with, or the one that paid it). */
async function readStatus(deps: CompletePaymentDeps, orderId: number, before: Order): Promise<PayStatus> {
  const order = (await deps.store.getOrder(orderId)) ?? before;
  const attemptNo = order.status === 'paying' ? order.openAttempt?.outTradeNo : order.paidAttempt;
  return statusOf(order, attemptNo ? await deps.store.getAttempt(attemptNo) : undefined);
}
