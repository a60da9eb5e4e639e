import { PaynowError } from '../domain/errors';
import type { DeliveryAttempt, EventStatus, EventTarget, OutboxEvent } from '../domain/events';
import type { Address, Attempt, AttemptStatus, AttemptSummary, GatewayPayment, Order, PointsAccount, Refund } from '../domain/model';

/** Who a token belongs to, and until when. */
export interface Session {
  userId: number;
  expiresAt: string;
}

/** Everything one pay request reads, in one round trip. Missing parts are undefined. */
export interface PayContext {
  order?: Order;
  address?: Address;
  account?: PointsAccount;
}

export type PayContextRead = 'latest' | 'snapshot';

/**
 * One conditional write that opens an attempt (holding its points) or, for points-only, pays the
 * order at once (spending them); when `previous` is given, the order's open attempt is superseded
 * and its hold released in the same write.
 */
export interface AttemptChange {
  attempt: Attempt;
  previous?: AttemptSummary;
  /** The order as the quote saw it: the write fails if its price changed since. */
  quoted: Pick<Order, 'goodsFen' | 'freeShipping' | 'freightOptions'>;
  now: string;
}

/** The write lost against a concurrent change: `points` the balance, `state` the order or attempt. */
export class WriteConflict extends PaynowError {
  static {
    WriteConflict.prototype.name = 'WriteConflict';
  }

  constructor(
    readonly part: 'points' | 'state',
    options?: ErrorOptions,
  ) {
    super(`conditional write failed on ${part}`, options);
  }
}

/** The persistence port of the pay flow; `DynamoPayStore` is its adapter. */
export interface PayStore {
  findSession(token: string): Promise<Session | undefined>;
  /**
   * `latest`: each item as last written, read one by one in one request (a concurrent pay may fall
   * between them); `snapshot`: all at one instant, at twice the cost. @throws WriteConflict when a
   * snapshot read is cancelled by a transaction on its items
   */
  loadPayContext(userId: number, orderId: number, addressId: number, read: PayContextRead): Promise<PayContext>;
  /** @throws WriteConflict when the order, the attempt or the points moved since they were read */
  commitAttempt(change: AttemptChange): Promise<void>;
  /**
   * Ends an open attempt without payment: hold back to available and, when the order is paying
   * with it (`orderLinked`), the order back to unpaid.
   * Returns false (and changes nothing) when the attempt or the order moved on.
   */
  releaseAttempt(attempt: Attempt, status: Extract<AttemptStatus, 'superseded' | 'expired'>, now: string, orderLinked?: boolean): Promise<boolean>;
  getAttempt(outTradeNo: string): Promise<Attempt | undefined>;
  /**
   * Claims the one gateway check an open attempt may have per `intervalMs` on the app's behalf (status
   * calls, repeat taps): true when this caller may ask the gateway now, false when someone did within
   * the interval. One conditional write, so concurrent callers get one claim.
   */
  claimGatewayCheck(outTradeNo: string, now: Date, intervalMs: number): Promise<boolean>;
  /**
   * Keeps the prepay id on the order's summary of its open attempt, or forgets it (`undefined`); no
   * change if the order moved on meanwhile.
   */
  rememberPrepayId(attempt: Pick<Attempt, 'orderId' | 'outTradeNo'>, prepayId: string | undefined): Promise<void>;
  getOrder(orderId: number): Promise<Order | undefined>;
  /** The order and the points of the attempt's user, read together. */
  loadSettlementContext(attempt: Attempt): Promise<{ order?: Order; account?: PointsAccount }>;
  /**
   * The attempt the order is paying with was paid: attempt and order paid, hold spent.
   * @throws WriteConflict when either moved on
   */
  captureAttempt(attempt: Attempt, payment: GatewayPayment, now: string): Promise<void>;
  /**
   * A released attempt was paid after all and the order can still take it: the order is paid by it,
   * its points are spent again from available, and `replaces` (the order's open attempt, if any) is
   * superseded and its hold released. @throws WriteConflict
   */
  payWithReleasedAttempt(attempt: Attempt, payment: GatewayPayment, replaces: AttemptSummary | undefined, now: string): Promise<void>;
  /**
   * Money arrived for an attempt the order cannot take: recorded for a refund, order untouched
   * (an attempt still open also gives its hold back), and `refund`, when given, recorded pending in
   * the same write. `releaseOrder`: the order is paying with this attempt (its price changed since):
   * it goes back to unpaid in the same write. @throws WriteConflict
   */
  markRefundRequired(attempt: Attempt, payment: GatewayPayment, now: string, refund?: Refund, releaseOrder?: boolean): Promise<void>;
  /**
   * A payment of an attempt whose money is recorded already, under another transaction id: kept for a
   * person (`npm run reconcile` lists it), once per transaction id; nothing else changes.
   */
  recordPaymentConflict(attempt: Attempt, payment: GatewayPayment, now: string): Promise<void>;
  /**
   * Records a refund of `attempt` as asked: pending (for an order refund, the order `refunding`), or
   * done at once for points only or a repayment made outside the gateways (order refunded, points back). Only one refund of an attempt at a
   * time: a new one follows only a refund that finally failed.
   * @throws WriteConflict when the attempt, its order or its previous refund moved on
   */
  beginRefund(refund: Refund, attempt: Attempt, now: string): Promise<void>;
  getRefund(outRefundNo: string): Promise<Refund | undefined>;
  /** Pending refunds due for a follow-up by `dueBy`, soonest first. */
  findDueRefunds(dueBy: string, limit: number): Promise<Refund[]>;
  /**
   * The gateway paid the refund out: refund succeeded, attempt refunded and, for an order refund,
   * the order refunded and its points back to available. @throws WriteConflict unless still pending
   */
  completeRefund(refund: Refund, refundedAt: string, now: string): Promise<void>;
  /** The gateway will never pay this refund out: failed with its reason; an order goes back to paid. @throws WriteConflict */
  failRefund(refund: Refund, reason: string, now: string): Promise<void>;
  /**
   * Still pending: counts the follow-up and says when to look again. Returns false (and changes
   * nothing) when another follow-up or a notification moved it on meanwhile.
   */
  deferRefund(refund: Refund, next: { nextCheckAt: string; accepted: boolean; lastError?: string }, now: string): Promise<boolean>;
  /**
   * Attempts of one due shard (`dueShard`) due by `dueBy`, soonest first, at most `limit`; `after` (from
   * the previous page) goes on where that page ended.
   */
  findDueAttempts(shard: number, dueBy: string, limit: number, after?: string): Promise<{ attempts: Attempt[]; after?: string }>;
  /**
   * The attempt due again at `dueAt`, with `failures` checks failed in a row (0 after a good one), only
   * if it is still in the status and at the due time it was read with. @returns false when it moved on
   */
  rescheduleCheck(attempt: Attempt, dueAt: string, failures: number): Promise<boolean>;
  /** Done watching: the gateway confirmed the released attempt unpaid; it leaves the index. @returns false when it moved on */
  unwatchAttempt(attempt: Attempt): Promise<boolean>;
  /** Attempts still in the partitions of before the due index (OPEN, WATCH), at most `limit`. */
  findLegacyIndexed(limit: number): Promise<Attempt[]>;
  /** A legacy-indexed attempt moved to its due shard at `dueAt`, only from where it was. @returns false when it moved on */
  moveToDueIndex(attempt: Attempt, dueAt: string): Promise<boolean>;
  /**
   * One sweep worker per group of shards at a time: the lease is taken when free or run out (`until`
   * at or before `now`). @returns false when another worker holds it
   */
  claimSweepLease(group: number, owner: string, now: string, until: string): Promise<boolean>;
  /** The lease given back early, if this owner still holds it. */
  releaseSweepLease(group: number, owner: string): Promise<void>;
}

/** An order's own fields, as the shop sets them. */
export type OrderFields = Pick<Order, 'orderId' | 'userId' | 'goodsName' | 'goodsFen' | 'freeShipping' | 'freightOptions'>;

/** Points the shop adds to or takes from a user's available points, once per `entryId`. */
export interface ShopPointsMove {
  userId: number;
  entryId: string;
  kind: 'credit' | 'debit';
  points: number;
  reason: string;
}

/** The persistence port of the shop's commands; `DynamoPayStore` is its adapter too. */
export interface ShopStore {
  getOrder(orderId: number): Promise<Order | undefined>;
  getAttempt(outTradeNo: string): Promise<Attempt | undefined>;
  /** Creates the order unpaid (`expect` new), or rewrites an unpaid one. @throws WriteConflict when it moved on */
  putUnpaidOrder(fields: OrderFields, expect: 'new' | 'unpaid', now: string): Promise<void>;
  /** A paying order's name only (its price, which the open attempt was quoted at, unchanged). @throws WriteConflict */
  renamePayingOrder(fields: OrderFields, openAttempt: string, now: string): Promise<void>;
  /**
   * The shop ends a paying order's open attempt (closed at its gateway already): its hold released,
   * the attempt `closed`, and the order unpaid with `repriced` fields, or `closed`. @throws WriteConflict
   */
  releaseForShop(attempt: Attempt, order: { repriced: OrderFields } | { closed: { reason?: string } }, now: string): Promise<void>;
  /** The order closed, with its `order.closed` event. @throws WriteConflict unless the order is still unpaid */
  closeUnpaidOrder(order: Pick<Order, 'orderId' | 'userId'>, now: string, reason?: string): Promise<void>;
  /**
   * Moves the points with a ledger entry keyed by the shop's id. @throws WriteConflict `points` when a
   * debit finds too few available points (or no account), `state` when the entry id was used already
   */
  moveShopPoints(move: ShopPointsMove, now: string): Promise<void>;
  getShopPointsMove(userId: number, entryId: string): Promise<ShopPointsMove | undefined>;
  getAccount(userId: number): Promise<PointsAccount | undefined>;
  findSession(token: string): Promise<Session | undefined>;
  putSession(token: string, userId: number, expiresAt: string): Promise<void>;
  /** Returns whether there was one. */
  deleteSession(token: string): Promise<boolean>;
  getAddress(userId: number, addressId: number): Promise<Address | undefined>;
  putAddress(address: Address): Promise<void>;
}

/** One delivery attempt of an event and where it leaves the event. */
export interface DeliveryRecord {
  attempt: DeliveryAttempt;
  deliveredTo: EventTarget[];
  status: EventStatus;
  /** Required while still pending. */
  nextAttemptAt?: string;
}

/**
 * The events the store writes with each money change (the outbox), and their delivery; `DynamoPayStore`
 * is its adapter too.
 */
export interface OutboxStore {
  /**
   * Undelivered events of one shard, oldest first (an order's events in the order they happened), a
   * page at a time: `after` is where the next page starts, undefined after the last.
   */
  findPendingEvents(shard: number, limit: number, after?: string): Promise<{ events: OutboxEvent[]; after?: string }>;
  getEvent(eventId: string): Promise<OutboxEvent | undefined>;
  /** Records one delivery attempt. Returns false (and changes nothing) when another delivery was recorded meanwhile. */
  recordDelivery(event: OutboxEvent, record: DeliveryRecord, now: string): Promise<boolean>;
}
