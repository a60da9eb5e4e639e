import type { Attempt, GatewayPayment, Refund } from './model';
import { fenToYuan } from './money';

/**
 * What the shop's systems are told when money moves for an order. Each event is written in the same
 * transaction as the change it reports (the outbox), so there is never one without the other.
 */
export type EventType = 'order.paid' | 'order.refunded' | 'order.refund_failed' | 'payment.refund_required' | 'order.closed';
export const EVENT_TYPES: readonly EventType[] = ['order.paid', 'order.refunded', 'order.refund_failed', 'payment.refund_required', 'order.closed'];

/**
 * The JSON the shop receives: `{id, type, created_at, data}`. `data` carries ids and amounts only,
 * never a name, phone or address. Amounts are yuan strings, as in the app's API.
 */
export interface ShopEvent {
  id: string;
  type: EventType;
  created_at: string;
  data: { order_id: number; user_id: number } & Record<string, string | number | boolean | null>;
}

/** Where an event goes: the shop's webhook and, by configuration, an EventBridge bus. */
export type EventTarget = 'webhook' | 'eventbridge';

/**
 * pending: some target has not acknowledged it yet; delivered: every target has; dead: the last
 * retry failed, a person decides (the alarm, `npm run shop -- redeliver`).
 */
export type EventStatus = 'pending' | 'delivered' | 'dead';

/** One try at delivering an event: per target, `ok` or why not. */
export interface DeliveryAttempt {
  at: string;
  results: Partial<Record<EventTarget, string>>;
}

/** An event in the outbox, with its delivery so far. */
export interface OutboxEvent {
  event: ShopEvent;
  /** The exact text sent (and signed) every time, so every delivery of an event is byte for byte the same. */
  body: string;
  status: EventStatus;
  /** Targets that acknowledged it. */
  deliveredTo: EventTarget[];
  /** Delivery attempts so far; each one is in `deliveries`. */
  attempts: number;
  deliveries: DeliveryAttempt[];
  /** While pending: not tried again before this. */
  nextAttemptAt?: string;
}

/**
 * Undelivered events are spread over this many index partitions by order id, so no partition key takes
 * every event (each takes 1/16 of them) while one order's events stay together, in creation order.
 * Changing it strands pending events in the old partitions: add partitions, never renumber.
 */
export const EVENT_SHARDS = 16;

export function eventShard(orderId: number): number {
  return orderId % EVENT_SHARDS;
}

/**
 * The shards dispatcher group `group` of `groups` delivers: each shard in exactly one group, so each
 * order's events in one run at a time, in order.
 */
export function eventShardsOf(group: number, groups: number): number[] {
  return Array.from({ length: EVENT_SHARDS }, (_, shard) => shard).filter((shard) => shard % groups === group);
}

/**
 * Pauses after each failed delivery, in minutes: 1, 2, 5, 10, 30 min, 1, 2, 4, 8, 8 h, then 8 h more
 * before the last try: about 32 hours of retries, beyond a day-long outage of the shop's endpoint.
 */
export const DELIVERY_BACKOFF_MINUTES: readonly number[] = [1, 2, 5, 10, 30, 60, 120, 240, 480, 480, 480];
export const MAX_DELIVERY_ATTEMPTS = DELIVERY_BACKOFF_MINUTES.length + 1;

/** When a pending event is tried again after its `attempts`-th failure; undefined when that was the last. */
export function nextDeliveryAt(attempts: number, now: Date): string | undefined {
  const pause = DELIVERY_BACKOFF_MINUTES[attempts - 1];
  return pause === undefined ? undefined : new Date(now.getTime() + pause * 60_000).toISOString();
}

function event(type: EventType, ref: string | number, createdAt: string, data: ShopEvent['data']): ShopEvent {
  // Named after what it reports, so writing the same change twice cannot make two events.
  return { id: `evt_${type.replace('.', '_')}_${ref}`, type, created_at: createdAt, data };
}

function paymentData(attempt: Attempt) {
  return { order_id: attempt.orderId, user_id: attempt.userId, out_trade_no: attempt.outTradeNo, pay_method: attempt.method };
}

export function orderPaidEvent(attempt: Attempt, payment: GatewayPayment | undefined, now: string): ShopEvent {
  return event('order.paid', attempt.outTradeNo, now, {
    ...paymentData(attempt),
    pay_price: fenToYuan(attempt.cashFen),
    pay_integral: attempt.points,
    address_id: attempt.addressId,
    // How to ship: null for an attempt of before the choice was recorded.
    freight_key: attempt.freightKey ?? null,
    freight_price: attempt.freightFen === undefined ? null : fenToYuan(attempt.freightFen),
    transaction_id: payment?.transactionId ?? null,
    paid_at: payment?.paidAt ?? now,
  });
}

/** Money arrived that the order cannot take; `refund` is its automatic refund, when there is one. */
export function refundRequiredEvent(attempt: Attempt, payment: GatewayPayment, now: string, refund?: Refund): ShopEvent {
  return event('payment.refund_required', attempt.outTradeNo, now, {
    ...paymentData(attempt),
    amount: fenToYuan(payment.amountFen),
    transaction_id: payment.transactionId,
    out_refund_no: refund?.outRefundNo ?? null,
  });
}

function refundData(refund: Refund) {
  return {
    order_id: refund.orderId,
    user_id: refund.userId,
    out_trade_no: refund.outTradeNo,
    out_refund_no: refund.outRefundNo,
    refund_price: fenToYuan(refund.cashFen),
    refund_integral: refund.points,
  };
}

/** `repaid_outside`: the cash went back outside the gateways (a person recorded it), so no gateway statement shows it. */
export function orderRefundedEvent(refund: Refund, refundedAt: string, now: string): ShopEvent {
  return event('order.refunded', refund.outRefundNo, now, {
    ...refundData(refund),
    refunded_at: refundedAt,
    repaid_outside: refund.repaidOutside !== undefined,
  });
}

export function orderRefundFailedEvent(refund: Refund, reason: string, now: string): ShopEvent {
  // A reopened refund's first failure has its event already: the second is another change.
  const ref = refund.reopenedAt ? `${refund.outRefundNo}_reopened` : refund.outRefundNo;
  return event('order.refund_failed', ref, now, { ...refundData(refund), reason });
}

/** The shop closed the order; `closedAttempt` is the open attempt closed with it, `reason` the shop's own words, if it gave any. */
export function orderClosedEvent(order: { orderId: number; userId: number }, closedAttempt: string | undefined, now: string, reason?: string): ShopEvent {
  return event('order.closed', order.orderId, now, {
    order_id: order.orderId,
    user_id: order.userId,
    closed_attempt: closedAttempt ?? null,
    reason: reason ?? null,
  });
}
