import { PayError } from '../domain/errors';
import type { Attempt, Order, OrderStatus, PayMethod, RefundStatus, RefundSummary } from '../domain/model';
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
 */
export async function getPayStatus(deps: CompletePaymentDeps, userId: number, orderId: number): Promise<PayStatus> {
  log.bind({ order_id: orderId });
  let { order, attempt } = await readCurrent(deps, orderId);
  if (!order || order.userId !== userId) throw new PayError('ORDER_NOT_FOUND');

  const now = (deps.now ?? systemClock)().getTime();
  if (attempt) log.bind({ out_trade_no: attempt.outTradeNo });
  const pending = order.status === 'paying' && attempt?.status === 'open' ? attempt : undefined;
  if (pending && now - Date.parse(pending.createdAt) > QUERY_AFTER_MS) {
    try {
      if (!(await deps.store.claimGatewayCheck(pending.outTradeNo, new Date(now), APP_GATEWAY_CHECK_INTERVAL_MS))) return statusOf(order, attempt);
      const { outcome } = await settleFromGateway(deps, pending);
      if (outcome) {
        const settled = await readCurrent(deps, orderId);
        order = settled.order ?? order;
        attempt = settled.attempt;
      }
    } catch (error) {
      // Whatever went wrong (gateway, a lost race), the stored state is still a true answer; the sweeper will ask again.
      log.warn('status check at the gateway failed', { out_trade_no: pending.outTradeNo }, error);
    }
  }

  return statusOf(order, attempt);
}

function statusOf(order: Order, attempt: Attempt | undefined): PayStatus {
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

/** The order and its current attempt: the one it is paying with, or the one that paid it (refunded since, perhaps). */
async function readCurrent(deps: CompletePaymentDeps, orderId: number): Promise<{ order?: Order; attempt?: Attempt }> {
  const order = await deps.store.getOrder(orderId);
  const attemptNo = order?.status === 'paying' ? order.openAttempt?.outTradeNo : order?.paidAttempt;
  return { order, attempt: attemptNo ? await deps.store.getAttempt(attemptNo) : undefined };
}
