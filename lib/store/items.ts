import { dueShard, nextCheckAt } from '../domain/checkSchedule';
import { type DeliveryAttempt, type EventStatus, type EventTarget, eventShard, type OutboxEvent, type ShopEvent } from '../domain/events';
import type { Address, Attempt, AttemptStatus, AttemptSummary, FreightOption, Order, OrderPrice, PointsAccount, Refund, RefundSummary } from '../domain/model';
import { duePartition, dueSortKey, ENTITY, INDEX_PARTITION, keys, type LedgerKind, outboxPartition, outboxSortKey, refundIndexSortKey } from './keys';

/** A table item as the document client reads and writes it. */
export type Item = Record<string, unknown>;

// Domain objects to items and back: the only place attribute names are spelled.

export function toOrder(item: Item): Order {
  const open = item.open_attempt as Item | undefined;
  return {
    orderId: item.order_id as number,
    userId: item.user_id as number,
    goodsName: item.goods_name as string,
    goodsFen: item.goods_fen as number,
    freeShipping: item.free_shipping as boolean,
    freightOptions: toFreightOptions(item),
    status: item.status as Order['status'],
    openAttempt: open && toSummary(open),
    paidAttempt: item.paid_attempt as string | undefined,
    paidAt: item.paid_at as string | undefined,
    refund: item.refund ? toRefundSummary(item.refund as Item) : undefined,
  };
}

function toRefundSummary(item: Item): RefundSummary {
  return {
    outRefundNo: item.out_refund_no as string,
    status: item.status as RefundSummary['status'],
    cashFen: item.cash_fen as number,
    points: item.points as number,
    refundedAt: item.refunded_at as string | undefined,
  };
}

/** The order's copy of its latest refund (attribute `refund`). */
export function fromRefundSummary(r: RefundSummary): Item {
  return { out_refund_no: r.outRefundNo, status: r.status, cash_fen: r.cashFen, points: r.points, ...(r.refundedAt ? { refunded_at: r.refundedAt } : {}) };
}

/** A new order as the shop creates it (seeding): unpaid unless stated. */
/** @param order.paidOutside paid before or outside paynow, with no attempt of ours (an import): reconcile reports it as information */
export function orderItem(
  order: Pick<Order, 'orderId' | 'userId' | 'goodsName' | 'goodsFen' | 'freeShipping' | 'freightOptions' | 'status'> & { paidOutside?: boolean },
  now: string,
): Item {
  return {
    ...keys.order(order.orderId),
    entity: ENTITY.order,
    order_id: order.orderId,
    user_id: order.userId,
    goods_name: order.goodsName,
    goods_fen: order.goodsFen,
    free_shipping: order.freeShipping,
    freight_options: order.freightOptions.map(fromFreightOption),
    status: order.status,
    ...(order.paidOutside ? { paid_outside: true } : {}),
    updated_at: now,
  };
}

function toFreightOptions(item: Item): FreightOption[] {
  return ((item.freight_options as Item[]) ?? []).map((o) => ({ key: o.key as number, name: o.name as string, feeFen: o.fee_fen as number }));
}

export function fromFreightOption(o: FreightOption): Item {
  return { key: o.key, name: o.name, fee_fen: o.feeFen };
}

export function toAddress(item: Item): Address {
  return {
    addressId: item.address_id as number,
    userId: item.user_id as number,
    name: item.name as string,
    phone: item.phone as string,
    province: item.province as string,
    city: item.city as string,
    district: item.district as string,
    detail: item.detail as string,
  };
}

function fromAddress(a: Address): Item {
  return {
    address_id: a.addressId,
    user_id: a.userId,
    name: a.name,
    phone: a.phone,
    province: a.province,
    city: a.city,
    district: a.district,
    detail: a.detail,
  };
}

export function addressItem(address: Address): Item {
  return { ...keys.address(address.userId, address.addressId), entity: ENTITY.address, ...fromAddress(address) };
}

export function toAccount(item: Item): PointsAccount {
  return {
    userId: item.user_id as number,
    available: item.integral_available as number,
    held: item.integral_held as number,
    spent: item.integral_spent as number,
  };
}

/** A points account credited with `credited` points, none held or spent. */
export function accountItem(userId: number, credited: number, now: string): Item {
  return {
    ...keys.account(userId),
    entity: ENTITY.account,
    user_id: userId,
    integral_available: credited,
    integral_held: 0,
    integral_spent: 0,
    integral_credited: credited,
    updated_at: now,
  };
}

export function sessionItem(tokenHash: string, userId: number, expiresAt: string): Item {
  return { ...keys.session(tokenHash), entity: ENTITY.session, user_id: userId, expires_at: expiresAt };
}

export function toSummary(item: Item): AttemptSummary {
  return {
    outTradeNo: item.out_trade_no as string,
    method: item.method as AttemptSummary['method'],
    cashFen: item.cash_fen as number,
    points: item.points as number,
    addressId: item.address_id as number,
    subject: item.subject as string,
    createdAt: item.created_at as string,
    expiresAt: item.expires_at as string,
    ...(item.prepay_id ? { prepayId: item.prepay_id as string } : {}),
    ...(item.freight_key === undefined ? {} : { freightKey: item.freight_key as number, freightFen: item.freight_fen as number }),
  };
}

export function fromSummary(a: AttemptSummary): Item {
  return {
    out_trade_no: a.outTradeNo,
    method: a.method,
    cash_fen: a.cashFen,
    points: a.points,
    address_id: a.addressId,
    subject: a.subject,
    created_at: a.createdAt,
    expires_at: a.expiresAt,
    ...(a.prepayId ? { prepay_id: a.prepayId } : {}),
    ...(a.freightKey === undefined ? {} : { freight_key: a.freightKey, freight_fen: a.freightFen }),
  };
}

export function toAttempt(item: Item): Attempt {
  return {
    ...toSummary(item),
    orderId: item.order_id as number,
    userId: item.user_id as number,
    status: item.status as AttemptStatus,
    address: toAddress(item.address as Item),
    paidAt: item.paid_at as string | undefined,
    transactionId: item.transaction_id as string | undefined,
    refundNo: item.refund_no as string | undefined,
    quotedPrice: item.quoted_price ? toPrice(item.quoted_price as Item) : undefined,
    dueAt: dueAtOf(item),
    checkFailures: item.check_failures as number | undefined,
  };
}

/** The due time in a due partition's sort key (`<due_at>#<out_trade_no>`). */
function dueAtOf(item: Item): string | undefined {
  const sortKey = item.gsi1sk as string | undefined;
  return String(item.gsi1pk ?? '').startsWith('DUE#') && sortKey ? sortKey.slice(0, sortKey.indexOf('#')) : undefined;
}

/** The index attributes that put an attempt in its due shard at `dueAt`. */
export function dueIndex(outTradeNo: string, dueAt: string): { gsi1pk: string; gsi1sk: string } {
  return { gsi1pk: duePartition(dueShard(outTradeNo)), gsi1sk: dueSortKey(dueAt, outTradeNo) };
}

function toPrice(item: Item): OrderPrice {
  return {
    goodsFen: item.goods_fen as number,
    freeShipping: item.free_shipping as boolean,
    freightOptions: toFreightOptions(item),
  };
}

/** A new attempt; an open one goes into its due shard, first due at its first query. Its prepay id is kept on the order's summary only. */
export function attemptItem(a: Attempt): Item {
  const { prepay_id: _onTheOrder, ...summary } = fromSummary(a);
  return {
    ...keys.attempt(a.outTradeNo),
    entity: ENTITY.attempt,
    ...summary,
    order_id: a.orderId,
    user_id: a.userId,
    status: a.status,
    address: fromAddress(a.address),
    paid_at: a.paidAt,
    ...(a.quotedPrice
      ? {
          quoted_price: {
            goods_fen: a.quotedPrice.goodsFen,
            free_shipping: a.quotedPrice.freeShipping,
            freight_options: a.quotedPrice.freightOptions.map(fromFreightOption),
          },
        }
      : {}),
    ...scheduledIndex(a),
  };
}

function scheduledIndex(a: Attempt): { gsi1pk?: string; gsi1sk?: string } {
  if (a.status !== 'open') return {};
  const due = nextCheckAt(a, Date.parse(a.createdAt));
  return due === undefined ? {} : dueIndex(a.outTradeNo, new Date(due).toISOString());
}

/** One points movement; its key is the movement itself (attempt + kind), so it can be written once only. */
export function ledgerItem(entry: { userId: number; orderId: number; outTradeNo: string; kind: LedgerKind; points: number }, now: string): Item {
  return {
    ...keys.ledger(entry.userId, entry.outTradeNo, entry.kind),
    entity: ENTITY.ledger,
    user_id: entry.userId,
    order_id: entry.orderId,
    out_trade_no: entry.outTradeNo,
    kind: entry.kind,
    points: entry.points,
    created_at: now,
  };
}

export function toRefund(item: Item): Refund {
  return {
    outRefundNo: item.out_refund_no as string,
    outTradeNo: item.out_trade_no as string,
    orderId: item.order_id as number,
    userId: item.user_id as number,
    kind: item.kind as Refund['kind'],
    channel: item.channel as Refund['channel'],
    cashFen: item.cash_fen as number,
    totalFen: item.total_fen as number,
    points: item.points as number,
    reason: item.reason as string,
    status: item.status as Refund['status'],
    failureReason: item.failure_reason as string | undefined,
    accepted: item.accepted === true,
    checks: (item.checks as number | undefined) ?? 0,
    nextCheckAt: item.next_check_at as string | undefined,
    lastError: item.last_error as string | undefined,
    handledNote: item.handled_note as string | undefined,
    repaidOutside: item.repaid_outside as string | undefined,
    reopenedAt: item.reopened_at as string | undefined,
    createdAt: item.created_at as string,
    refundedAt: item.refunded_at as string | undefined,
  };
}

/** A new refund; a pending one goes into the sweeper's index, due at its next check. */
export function refundItem(r: Refund): Item {
  const pending = r.status === 'pending' && r.nextCheckAt !== undefined;
  return {
    ...keys.refund(r.outRefundNo),
    entity: ENTITY.refund,
    out_refund_no: r.outRefundNo,
    out_trade_no: r.outTradeNo,
    order_id: r.orderId,
    user_id: r.userId,
    kind: r.kind,
    channel: r.channel,
    cash_fen: r.cashFen,
    total_fen: r.totalFen,
    points: r.points,
    reason: r.reason,
    status: r.status,
    accepted: r.accepted,
    checks: r.checks,
    next_check_at: r.nextCheckAt,
    created_at: r.createdAt,
    refunded_at: r.refundedAt,
    repaid_outside: r.repaidOutside,
    ...(pending ? { gsi1pk: INDEX_PARTITION.refund, gsi1sk: refundIndexSortKey({ nextCheckAt: r.nextCheckAt as string, outRefundNo: r.outRefundNo }) } : {}),
  };
}

/** A new event, pending, in its order's outbox partition. */
export function eventItem(event: ShopEvent): Item {
  return {
    ...keys.event(event.id),
    entity: ENTITY.event,
    event_id: event.id,
    type: event.type,
    order_id: event.data.order_id,
    created_at: event.created_at,
    body: JSON.stringify(event),
    status: 'pending',
    delivered_to: [],
    attempts: 0,
    deliveries: [],
    next_attempt_at: event.created_at,
    gsi1pk: outboxPartition(eventShard(event.data.order_id)),
    gsi1sk: outboxSortKey(event),
  };
}

export function toOutboxEvent(item: Item): OutboxEvent {
  const body = item.body as string;
  return {
    event: JSON.parse(body) as ShopEvent,
    body,
    status: item.status as EventStatus,
    deliveredTo: (item.delivered_to as EventTarget[] | undefined) ?? [],
    attempts: item.attempts as number,
    deliveries: (item.deliveries as DeliveryAttempt[] | undefined) ?? [],
    nextAttemptAt: item.next_attempt_at as string | undefined,
  };
}
