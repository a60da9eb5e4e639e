import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactGetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { nextCheckAt } from '../domain/checkSchedule';
import {
  type OutboxEvent,
  orderClosedEvent,
  orderPaidEvent,
  orderRefundedEvent,
  orderRefundFailedEvent,
  refundRequiredEvent,
  type ShopEvent,
} from '../domain/events';
import type { Address, Attempt, AttemptStatus, AttemptSummary, GatewayPayment, Order, PointsAccount, Refund } from '../domain/model';
import { ABNORMAL } from '../domain/refund';
import {
  addressItem,
  attemptItem,
  dueIndex,
  eventItem,
  fromFreightOption,
  fromRefundSummary,
  fromSummary,
  type Item,
  ledgerItem,
  orderItem,
  refundItem,
  sessionItem,
  toAccount,
  toAddress,
  toAttempt,
  toOrder,
  toOutboxEvent,
  toRefund,
} from './items';
import {
  duePartition,
  ENTITY,
  hashToken,
  INDEX_PARTITION,
  type ItemKey,
  keys,
  type LedgerKind,
  OPEN_ATTEMPTS_INDEX,
  outboxPartition,
  refundIndexSortKey,
  sweepLeaseKey,
} from './keys';
import {
  type AttemptChange,
  type DeliveryRecord,
  type OrderFields,
  type OutboxStore,
  type PayContext,
  type PayContextRead,
  type PayStore,
  type Session,
  type ShopPointsMove,
  type ShopStore,
  WriteConflict,
} from './payStore';

/** A case a person handled: a failed refund, or a second payment of a paid attempt. */
export type HandledCase = { outRefundNo: string } | { outTradeNo: string; transactionId: string };

type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/**
 * The order's price must still be the one the quote was computed from. Written element by element:
 * comparing whole lists works on DynamoDB but not on dynalite.
 */
function priceUnchanged(quoted: Pick<Order, 'freightOptions'>): string {
  const options = quoted.freightOptions.map((_, i) => `freight_options[${i}].#key = :fk${i} AND freight_options[${i}].fee_fen = :ff${i}`);
  const count = options.length ? 'size(freight_options) = :freightCount' : '(attribute_not_exists(freight_options) OR size(freight_options) = :freightCount)';
  return ['goods_fen = :goods', 'free_shipping = :free', count, ...options].join(' AND ');
}

function priceValues(quoted: Pick<Order, 'goodsFen' | 'freeShipping' | 'freightOptions'>): Item {
  return Object.fromEntries([
    [':goods', quoted.goodsFen],
    [':free', quoted.freeShipping],
    [':freightCount', quoted.freightOptions.length],
    ...quoted.freightOptions.flatMap((o, i) => [
      [`:fk${i}`, o.key],
      [`:ff${i}`, o.feeFen],
    ]),
  ]);
}

const orderUnpaid = '#status = :unpaid';
const orderPayingWith = '#status = :paying AND open_attempt.out_trade_no = :open';
const orderPaidUpdate = 'SET #status = :paid, paid_attempt = :attempt, paid_at = :now, updated_at = :now REMOVE open_attempt';

export class DynamoPayStore implements PayStore, ShopStore, OutboxStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async findSession(token: string): Promise<Session | undefined> {
    const item = await this.get(keys.session(hashToken(token)));
    return item && { userId: item.user_id as number, expiresAt: item.expires_at as string };
  }

  async loadPayContext(userId: number, orderId: number, addressId: number, read: PayContextRead): Promise<PayContext> {
    const itemKeys = [keys.order(orderId), keys.address(userId, addressId), keys.account(userId)];
    const [order, address, account] = read === 'snapshot' ? await this.transactGet(itemKeys) : await this.batchGet(itemKeys);
    return {
      order: order && toOrder(order),
      address: address && toAddress(address),
      account: account && toAccount(account),
    };
  }

  async getAttempt(outTradeNo: string): Promise<Attempt | undefined> {
    const item = await this.get(keys.attempt(outTradeNo));
    return item && toAttempt(item);
  }

  async claimGatewayCheck(outTradeNo: string, now: Date, intervalMs: number): Promise<boolean> {
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        // An item of its own beside the attempt: the attempt's state changes only with its money.
        Key: keys.gatewayCheck(outTradeNo),
        ConditionExpression: 'attribute_not_exists(checked_at) OR checked_at <= :cutoff',
        UpdateExpression: 'SET entity = :entity, checked_at = :now',
        ExpressionAttributeValues: {
          ':entity': ENTITY.gatewayCheck,
          ':now': now.toISOString(),
          ':cutoff': new Date(now.getTime() - intervalMs).toISOString(),
        },
      }),
    );
  }

  async rememberPrepayId(attempt: Pick<Attempt, 'orderId' | 'outTradeNo'>, prepayId: string | undefined): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.order(attempt.orderId),
          ConditionExpression: orderPayingWith,
          UpdateExpression: prepayId ? 'SET open_attempt.prepay_id = :prepay' : 'REMOVE open_attempt.prepay_id',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':paying': 'paying', ':open': attempt.outTradeNo, ...(prepayId ? { ':prepay': prepayId } : {}) },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async commitAttempt({ attempt, previous, quoted, now }: AttemptChange): Promise<void> {
    const paysNow = attempt.status === 'paid';
    const released = previous?.points ?? 0;
    const account = this.accountMove(attempt.userId, {
      available: released - attempt.points,
      held: (paysNow ? 0 : attempt.points) - released,
      spent: paysNow ? attempt.points : 0,
    });
    const order: TransactItem = {
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: `user_id = :user AND ${priceUnchanged(quoted)} AND ${previous ? orderPayingWith : orderUnpaid}`,
        UpdateExpression: paysNow ? orderPaidUpdate : 'SET #status = :paying, open_attempt = :summary, updated_at = :now',
        ExpressionAttributeNames: { '#status': 'status', ...(quoted.freightOptions.length ? { '#key': 'key' } : {}) },
        ExpressionAttributeValues: {
          ':user': attempt.userId,
          ...priceValues(quoted),
          ':now': now,
          ...(previous ? { ':paying': 'paying', ':open': previous.outTradeNo } : { ':unpaid': 'unpaid' }),
          ...(paysNow ? { ':paid': 'paid', ':attempt': attempt.outTradeNo } : { ':paying': 'paying', ':summary': fromSummary(attempt) }),
        },
      },
    };
    await this.transact(
      [
        account,
        order,
        previous && this.attemptTransition(previous, 'open', 'superseded', now),
        previous && this.ledgerPut(attempt, previous.outTradeNo, 'release', previous.points, now),
        { Put: { TableName: this.table, Item: attemptItem(attempt), ConditionExpression: 'attribute_not_exists(pk)' } },
        this.ledgerPut(attempt, attempt.outTradeNo, paysNow ? 'spend' : 'hold', attempt.points, now),
        paysNow ? this.eventPut(orderPaidEvent(attempt, undefined, now)) : undefined,
      ],
      account,
    );
  }

  async releaseAttempt(attempt: Attempt, status: Extract<AttemptStatus, 'superseded' | 'expired'>, now: string, orderLinked = true): Promise<boolean> {
    try {
      await this.transact([
        this.accountMove(attempt.userId, { available: attempt.points, held: -attempt.points }),
        this.ledgerPut(attempt, attempt.outTradeNo, 'release', attempt.points, now),
        orderLinked ? this.orderBackToUnpaid(attempt, now) : undefined,
        this.attemptTransition(attempt, 'open', status, now),
      ]);
      return true;
    } catch (error) {
      if (error instanceof WriteConflict) return false;
      throw error;
    }
  }

  async loadSettlementContext(attempt: Attempt): Promise<{ order?: Order; account?: PointsAccount }> {
    const [order, account] = await this.transactGet([keys.order(attempt.orderId), keys.account(attempt.userId)]);
    return { order: order && toOrder(order), account: account && toAccount(account) };
  }

  async captureAttempt(attempt: Attempt, payment: GatewayPayment, now: string): Promise<void> {
    await this.transact([
      this.accountMove(attempt.userId, { held: -attempt.points, spent: attempt.points }),
      this.ledgerPut(attempt, attempt.outTradeNo, 'capture', attempt.points, now),
      this.orderToPaid(attempt, { paying: attempt.outTradeNo }, now),
      this.attemptTransition(attempt, 'open', 'paid', now, { payment }),
      this.eventPut(orderPaidEvent(attempt, payment, now)),
    ]);
  }

  async payWithReleasedAttempt(attempt: Attempt, payment: GatewayPayment, replaces: AttemptSummary | undefined, now: string): Promise<void> {
    const released = replaces?.points ?? 0;
    const account = this.accountMove(attempt.userId, { available: released - attempt.points, held: -released, spent: attempt.points });
    await this.transact(
      [
        account,
        this.ledgerPut(attempt, attempt.outTradeNo, 'spend', attempt.points, now),
        this.orderToPaid(attempt, replaces ? { paying: replaces.outTradeNo } : 'unpaid', now),
        this.attemptTransition(attempt, attempt.status, 'paid', now, { payment }),
        replaces && this.attemptTransition(replaces, 'open', 'superseded', now),
        replaces && this.ledgerPut(attempt, replaces.outTradeNo, 'release', replaces.points, now),
        this.eventPut(orderPaidEvent(attempt, payment, now)),
      ],
      account,
    );
  }

  async markRefundRequired(attempt: Attempt, payment: GatewayPayment, now: string, refund?: Refund, releaseOrder = false): Promise<void> {
    const stillHolds = attempt.status === 'open';
    await this.transact([
      releaseOrder ? this.orderBackToUnpaid(attempt, now) : undefined,
      stillHolds ? this.accountMove(attempt.userId, { available: attempt.points, held: -attempt.points }) : undefined,
      stillHolds ? this.ledgerPut(attempt, attempt.outTradeNo, 'release', attempt.points, now) : undefined,
      this.attemptTransition(attempt, attempt.status, 'refund_required', now, { payment, refundNo: refund?.outRefundNo }),
      refund && this.refundPut(refund),
      this.eventPut(refundRequiredEvent(attempt, payment, now, refund)),
    ]);
  }

  async recordPaymentConflict(attempt: Attempt, payment: GatewayPayment, now: string): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keys.paymentConflict(attempt.outTradeNo, payment.transactionId),
            entity: ENTITY.paymentConflict,
            out_trade_no: attempt.outTradeNo,
            order_id: attempt.orderId,
            user_id: attempt.userId,
            channel: payment.channel,
            transaction_id: payment.transactionId,
            recorded_transaction_id: attempt.transactionId,
            amount_fen: payment.amountFen,
            paid_at: payment.paidAt,
            created_at: now,
          },
          // Reported again (the gateway resends): kept once.
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async beginRefund(refund: Refund, attempt: Attempt, now: string): Promise<void> {
    // This number was begun already (DynamoDB would refuse a transaction naming its item twice).
    if (refund.outRefundNo === attempt.refundNo) throw new WriteConflict('state');
    const done = refund.status === 'succeeded';
    const isOrder = refund.kind === 'order';
    const attemptUpdate: TransactItem = {
      Update: {
        TableName: this.table,
        Key: keys.attempt(attempt.outTradeNo),
        // One refund of an attempt at a time: the next number only after the last one, once it failed (checked below).
        ConditionExpression: `#status = :from AND ${attempt.refundNo ? 'refund_no = :previous' : 'attribute_not_exists(refund_no)'}`,
        UpdateExpression: `SET refund_no = :no, updated_at = :now${done ? ', #status = :refunded' : ''}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':from': isOrder ? 'paid' : 'refund_required',
          ':no': refund.outRefundNo,
          ':now': now,
          ...(attempt.refundNo ? { ':previous': attempt.refundNo } : {}),
          ...(done ? { ':refunded': 'refunded' } : {}),
        },
      },
    };
    const previousFailed: TransactItem | undefined = attempt.refundNo
      ? {
          ConditionCheck: {
            TableName: this.table,
            Key: keys.refund(attempt.refundNo),
            ConditionExpression: '#status = :failed',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':failed': 'failed' },
          },
        }
      : undefined;
    const order: TransactItem | undefined = isOrder
      ? {
          Update: {
            TableName: this.table,
            Key: keys.order(refund.orderId),
            ConditionExpression: '#status = :paid AND paid_attempt = :attempt',
            UpdateExpression: 'SET #status = :to, refund = :summary, updated_at = :now',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':paid': 'paid',
              ':attempt': attempt.outTradeNo,
              ':to': done ? 'refunded' : 'refunding',
              ':summary': fromRefundSummary(refund),
              ':now': now,
            },
          },
        }
      : undefined;
    await this.transact([
      order,
      attemptUpdate,
      previousFailed,
      this.refundPut(refund),
      done ? this.accountMove(refund.userId, { available: refund.points, spent: -refund.points }) : undefined,
      done ? this.refundLedgerPut(refund, now) : undefined,
      done && isOrder ? this.eventPut(orderRefundedEvent(refund, now, now)) : undefined,
    ]);
  }

  /**
   * Migration (README "When a refund failed"): a refund recorded failed with the reason
   * ABNORMAL, as before abnormal refunds were kept pending, made pending and marked ABNORMAL again, as
   * it is recorded now: its order refunding again, the sweeper following it up from now (it succeeds
   * once a person sends it on). Only while it is still its attempt's latest refund and its order is
   * paid by that attempt; false when any of that no longer holds (reopened already, or moved on).
   */
  async reopenAbnormalRefund(refund: Refund, now: string): Promise<boolean> {
    const isOrder = refund.kind === 'order';
    const statusName = { '#status': 'status' };
    try {
      await this.transact([
        {
          Update: {
            TableName: this.table,
            Key: keys.refund(refund.outRefundNo),
            // One a person noted as handled (paid back outside the gateways) stays as it is.
            ConditionExpression: '#status = :failed AND failure_reason = :abnormal AND attribute_not_exists(handled_at)',
            UpdateExpression:
              'SET #status = :pending, last_error = :abnormal, accepted = :accepted, next_check_at = :now, gsi1pk = :partition, gsi1sk = :sortKey, reopened_at = :now, updated_at = :now REMOVE failure_reason',
            ExpressionAttributeNames: statusName,
            ExpressionAttributeValues: {
              ':failed': 'failed',
              ':abnormal': ABNORMAL,
              ':pending': 'pending',
              ':accepted': true,
              ':now': now,
              ':partition': INDEX_PARTITION.refund,
              ':sortKey': refundIndexSortKey({ nextCheckAt: now, outRefundNo: refund.outRefundNo }),
            },
          },
        },
        {
          ConditionCheck: {
            TableName: this.table,
            Key: keys.attempt(refund.outTradeNo),
            ConditionExpression: '#status = :from AND refund_no = :no',
            ExpressionAttributeNames: statusName,
            ExpressionAttributeValues: { ':from': isOrder ? 'paid' : 'refund_required', ':no': refund.outRefundNo },
          },
        },
        isOrder
          ? {
              Update: {
                TableName: this.table,
                Key: keys.order(refund.orderId),
                ConditionExpression: '#status = :paid AND paid_attempt = :attempt AND refund.out_refund_no = :no',
                UpdateExpression: 'SET #status = :refunding, refund.#status = :pending, updated_at = :now',
                ExpressionAttributeNames: statusName,
                ExpressionAttributeValues: {
                  ':paid': 'paid',
                  ':attempt': refund.outTradeNo,
                  ':no': refund.outRefundNo,
                  ':refunding': 'refunding',
                  ':pending': 'pending',
                  ':now': now,
                },
              },
            }
          : undefined,
      ]);
      return true;
    } catch (error) {
      if (error instanceof WriteConflict) return false;
      throw error;
    }
  }

  /**
   * Migration: a refund the ABNORMAL migration reopened before it marked `reopened_at` (until 2026-11-30),
   * still pending, marked now, so that a second failure takes an event id of its own. False when it is no
   * longer pending or is marked already.
   */
  async markReopened(outRefundNo: string, at: string): Promise<boolean> {
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.refund(outRefundNo),
        ConditionExpression: '#status = :pending AND attribute_not_exists(reopened_at)',
        UpdateExpression: 'SET reopened_at = :at',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':pending': 'pending', ':at': at },
      }),
    );
  }

  /**
   * A person has dealt with a case reconcile lists as work: a failed refund (the payer paid back outside
   * the gateways, say) or a second payment kept for a person (`CONFLICT#`). Noted on its item with when
   * and how; reconcile then counts it as handled. False when there is no such case: no refund of that
   * number that failed, no such second payment.
   */
  async markHandled(subject: HandledCase, note: string, now: string): Promise<boolean> {
    const isRefund = 'outRefundNo' in subject;
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        Key: isRefund ? keys.refund(subject.outRefundNo) : keys.paymentConflict(subject.outTradeNo, subject.transactionId),
        ConditionExpression: isRefund ? '#status = :failed' : 'attribute_exists(pk)',
        UpdateExpression: 'SET handled_at = :now, handled_note = :note',
        ...(isRefund ? { ExpressionAttributeNames: { '#status': 'status' } } : {}),
        ExpressionAttributeValues: { ':now': now, ':note': note, ...(isRefund ? { ':failed': 'failed' } : {}) },
      }),
    );
  }

  async getRefund(outRefundNo: string): Promise<Refund | undefined> {
    const item = await this.get(keys.refund(outRefundNo));
    return item && toRefund(item);
  }

  async findDueRefunds(dueBy: string, limit: number): Promise<Refund[]> {
    return (await this.queryIndexItems(INDEX_PARTITION.refund, dueBy, limit)).map(toRefund);
  }

  async completeRefund(refund: Refund, refundedAt: string, now: string): Promise<void> {
    const isOrder = refund.kind === 'order';
    await this.transact([
      this.refundTransition(refund, 'succeeded', now, 'SET refunded_at = :refundedAt', { ':refundedAt': refundedAt }),
      {
        Update: {
          TableName: this.table,
          Key: keys.attempt(refund.outTradeNo),
          ConditionExpression: '#status = :from AND refund_no = :no',
          UpdateExpression: 'SET #status = :refunded, updated_at = :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':from': isOrder ? 'paid' : 'refund_required', ':no': refund.outRefundNo, ':refunded': 'refunded', ':now': now },
        },
      },
      isOrder ? this.orderRefundTransition(refund, 'refunded', 'succeeded', now, refundedAt) : undefined,
      isOrder ? this.accountMove(refund.userId, { available: refund.points, spent: -refund.points }) : undefined,
      isOrder ? this.refundLedgerPut(refund, now) : undefined,
      isOrder ? this.eventPut(orderRefundedEvent(refund, refundedAt, now)) : undefined,
    ]);
  }

  async failRefund(refund: Refund, reason: string, now: string): Promise<void> {
    await this.transact([
      this.refundTransition(refund, 'failed', now, 'SET failure_reason = :reason', { ':reason': reason }),
      refund.kind === 'order' ? this.orderRefundTransition(refund, 'paid', 'failed', now) : undefined,
      refund.kind === 'order' ? this.eventPut(orderRefundFailedEvent(refund, reason, now)) : undefined,
    ]);
  }

  async deferRefund(refund: Refund, next: { nextCheckAt: string; accepted: boolean; lastError?: string }, now: string): Promise<boolean> {
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.refund(refund.outRefundNo),
        // `checks` moves with every follow-up: two at once (a sweep and the operator's call) count once.
        ConditionExpression: '#status = :pending AND checks = :checks',
        UpdateExpression: `SET checks = :next, next_check_at = :at, gsi1sk = :sortKey, accepted = :accepted, updated_at = :now${next.lastError ? ', last_error = :error' : ' REMOVE last_error'}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':pending': 'pending',
          ':checks': refund.checks,
          ':next': refund.checks + 1,
          ':at': next.nextCheckAt,
          ':sortKey': refundIndexSortKey({ nextCheckAt: next.nextCheckAt, outRefundNo: refund.outRefundNo }),
          ':accepted': refund.accepted || next.accepted,
          ':now': now,
          ...(next.lastError ? { ':error': next.lastError } : {}),
        },
      }),
    );
  }

  async findDueAttempts(shard: number, dueBy: string, limit: number, after?: string): Promise<{ attempts: Attempt[]; after?: string }> {
    const { Items = [], LastEvaluatedKey } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: OPEN_ATTEMPTS_INDEX,
        KeyConditionExpression: 'gsi1pk = :partition AND gsi1sk <= :by',
        // Sort keys are `<instant>#<number>`: every key of that instant sorts before `~`.
        ExpressionAttributeValues: { ':partition': duePartition(shard), ':by': `${dueBy}#~` },
        Limit: limit,
        ...(after ? { ExclusiveStartKey: JSON.parse(after) } : {}),
      }),
    );
    return { attempts: (Items as Item[]).map(toAttempt), after: LastEvaluatedKey ? JSON.stringify(LastEvaluatedKey) : undefined };
  }

  async rescheduleCheck(attempt: Attempt, dueAt: string, failures: number): Promise<boolean> {
    return this.moveInIndex(attempt, { set: dueIndex(attempt.outTradeNo, dueAt), failures });
  }

  async unwatchAttempt(attempt: Attempt): Promise<boolean> {
    return this.moveInIndex(attempt, { set: undefined, failures: 0 });
  }

  async findLegacyIndexed(limit: number): Promise<Attempt[]> {
    const found: Attempt[] = [];
    for (const partition of [INDEX_PARTITION.legacyOpen, INDEX_PARTITION.legacyWatch]) {
      if (found.length >= limit) break;
      const { Items = [] } = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: OPEN_ATTEMPTS_INDEX,
          KeyConditionExpression: 'gsi1pk = :partition',
          ExpressionAttributeValues: { ':partition': partition },
          Limit: limit - found.length,
        }),
      );
      found.push(...(Items as Item[]).map(toAttempt));
    }
    return found;
  }

  async moveToDueIndex(attempt: Attempt, dueAt: string): Promise<boolean> {
    return this.moveInIndex(attempt, { set: dueIndex(attempt.outTradeNo, dueAt), failures: 0 });
  }

  /**
   * The attempt's place in the index: moved to `set` (or out of the index), only if it is still in the
   * status and at the place it was read at, so a sweep never undoes what a notification or another sweep
   * did meanwhile. An attempt read from a partition of before the due index (no `dueAt`) is matched by
   * its status and that partition.
   * @returns false when it had moved on
   */
  private async moveInIndex(attempt: Attempt, to: { set?: { gsi1pk: string; gsi1sk: string }; failures: number }): Promise<boolean> {
    const where = attempt.dueAt
      ? { condition: '#status = :status AND gsi1sk = :at', values: { ':at': dueIndex(attempt.outTradeNo, attempt.dueAt).gsi1sk } }
      : {
          condition: '#status = :status AND gsi1pk IN (:legacyOpen, :legacyWatch)',
          values: { ':legacyOpen': INDEX_PARTITION.legacyOpen, ':legacyWatch': INDEX_PARTITION.legacyWatch },
        };
    const set = [to.set ? 'gsi1pk = :pk, gsi1sk = :sk' : '', to.failures > 0 ? 'check_failures = :failures' : ''].filter(Boolean);
    const remove = [to.set ? '' : 'gsi1pk, gsi1sk', to.failures > 0 ? '' : 'check_failures'].filter(Boolean);
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.attempt(attempt.outTradeNo),
        ConditionExpression: where.condition,
        UpdateExpression: `${set.length ? `SET ${set.join(', ')} ` : ''}${remove.length ? `REMOVE ${remove.join(', ')}` : ''}`.trim(),
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':status': attempt.status,
          ...where.values,
          ...(to.set ? { ':pk': to.set.gsi1pk, ':sk': to.set.gsi1sk } : {}),
          ...(to.failures > 0 ? { ':failures': to.failures } : {}),
        },
      }),
    );
  }

  async claimSweepLease(group: number, owner: string, now: string, until: string): Promise<boolean> {
    return this.applied(
      new PutCommand({
        TableName: this.table,
        Item: { ...sweepLeaseKey(group), entity: ENTITY.sweepLease, owner, until, claimed_at: now },
        ConditionExpression: 'attribute_not_exists(pk) OR #until <= :now',
        ExpressionAttributeNames: { '#until': 'until' },
        ExpressionAttributeValues: { ':now': now },
      }),
    );
  }

  async releaseSweepLease(group: number, owner: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: sweepLeaseKey(group),
          ConditionExpression: '#owner = :owner',
          // Free for any clock from now on (the epoch), not only from this run's now.
          UpdateExpression: 'SET #until = :free',
          ExpressionAttributeNames: { '#owner': 'owner', '#until': 'until' },
          ExpressionAttributeValues: { ':owner': owner, ':free': new Date(0).toISOString() },
        }),
      );
    } catch (error) {
      // Taken over after it ran out: the other worker's now.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  // ---- the shop's commands ----

  async putUnpaidOrder(fields: OrderFields, expect: 'new' | 'unpaid', now: string): Promise<void> {
    const Item = orderItem({ ...fields, status: 'unpaid' }, now);
    if (expect === 'new') {
      // A transaction of one item: sent again by the SDK after a lost answer, it carries the same
      // ClientRequestToken and DynamoDB answers it done. A Put sent again would fail its own condition, and
      // the shop would be told nothing changed.
      await this.transact([{ Put: { TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' } }]);
      return;
    }
    await this.conditional(
      new PutCommand({
        TableName: this.table,
        Item,
        ConditionExpression: '#status = :unpaid AND user_id = :user',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':unpaid': 'unpaid', ':user': fields.userId },
      }),
    );
  }

  async renamePayingOrder(fields: OrderFields, openAttempt: string, now: string): Promise<void> {
    await this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.order(fields.orderId),
        ConditionExpression: `${orderPayingWith} AND user_id = :user`,
        // The freight options' names only: their keys and fees are the price the attempt was quoted.
        UpdateExpression: 'SET goods_name = :name, freight_options = :freight, updated_at = :now',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':paying': 'paying',
          ':open': openAttempt,
          ':user': fields.userId,
          ':name': fields.goodsName,
          ':freight': fields.freightOptions.map(fromFreightOption),
          ':now': now,
        },
      }),
    );
  }

  async releaseForShop(attempt: Attempt, order: { repriced: OrderFields } | { closed: { reason?: string } }, now: string): Promise<void> {
    const repriced = 'repriced' in order ? order.repriced : undefined;
    const closeReason = 'closed' in order ? order.closed.reason : undefined;
    await this.transact([
      this.accountMove(attempt.userId, { available: attempt.points, held: -attempt.points }),
      this.ledgerPut(attempt, attempt.outTradeNo, 'release', attempt.points, now),
      this.attemptTransition(attempt, 'open', 'closed', now),
      {
        Update: {
          TableName: this.table,
          Key: keys.order(attempt.orderId),
          ConditionExpression: orderPayingWith,
          UpdateExpression: repriced
            ? 'SET #status = :to, goods_name = :name, goods_fen = :goods, free_shipping = :free, freight_options = :freight, updated_at = :now REMOVE open_attempt'
            : `SET #status = :to, updated_at = :now${closeReason ? ', close_reason = :reason' : ''} REMOVE open_attempt`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':paying': 'paying',
            ':open': attempt.outTradeNo,
            ':to': repriced ? 'unpaid' : 'closed',
            ':now': now,
            ...(repriced
              ? {
                  ':name': repriced.goodsName,
                  ':goods': repriced.goodsFen,
                  ':free': repriced.freeShipping,
                  ':freight': repriced.freightOptions.map(fromFreightOption),
                }
              : {}),
            ...(closeReason ? { ':reason': closeReason } : {}),
          },
        },
      },
      repriced ? undefined : this.eventPut(orderClosedEvent(attempt, attempt.outTradeNo, now, closeReason)),
    ]);
  }

  async closeUnpaidOrder(order: Pick<Order, 'orderId' | 'userId'>, now: string, reason?: string): Promise<void> {
    await this.transact([
      {
        Update: {
          TableName: this.table,
          Key: keys.order(order.orderId),
          ConditionExpression: orderUnpaid,
          UpdateExpression: `SET #status = :closed, updated_at = :now${reason ? ', close_reason = :reason' : ''}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unpaid': 'unpaid', ':closed': 'closed', ':now': now, ...(reason ? { ':reason': reason } : {}) },
        },
      },
      this.eventPut(orderClosedEvent(order, undefined, now, reason)),
    ]);
  }

  async moveShopPoints(move: ShopPointsMove, now: string): Promise<void> {
    const signed = move.kind === 'credit' ? move.points : -move.points;
    const account: TransactItem = {
      Update: {
        TableName: this.table,
        Key: keys.account(move.userId),
        // A credit opens the account if the user has none; a debit needs one with enough available.
        ...(move.kind === 'debit' ? { ConditionExpression: 'attribute_exists(pk) AND integral_available >= :take' } : {}),
        UpdateExpression:
          'SET entity = :entity, user_id = :user, integral_held = if_not_exists(integral_held, :zero), integral_spent = if_not_exists(integral_spent, :zero), updated_at = :now ADD integral_available :delta, integral_credited :delta',
        ExpressionAttributeValues: {
          ':entity': ENTITY.account,
          ':user': move.userId,
          ':zero': 0,
          ':now': now,
          ':delta': signed,
          ...(move.kind === 'debit' ? { ':take': move.points } : {}),
        },
      },
    };
    await this.transact(
      [
        account,
        {
          Put: {
            TableName: this.table,
            Item: {
              ...keys.shopLedger(move.userId, move.entryId),
              entity: ENTITY.ledger,
              user_id: move.userId,
              entry_id: move.entryId,
              kind: move.kind,
              points: move.points,
              reason: move.reason,
              created_at: now,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
      ],
      account,
    );
  }

  async getShopPointsMove(userId: number, entryId: string): Promise<ShopPointsMove | undefined> {
    const item = await this.get(keys.shopLedger(userId, entryId));
    return (
      item && { userId, entryId, kind: item.kind as ShopPointsMove['kind'], points: item.points as number, reason: (item.reason as string | undefined) ?? '' }
    );
  }

  async getAccount(userId: number): Promise<PointsAccount | undefined> {
    const item = await this.get(keys.account(userId));
    return item && toAccount(item);
  }

  async putSession(token: string, userId: number, expiresAt: string): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: sessionItem(hashToken(token), userId, expiresAt) }));
  }

  async deleteSession(token: string): Promise<boolean> {
    try {
      // A transaction of one item, as putUnpaidOrder's new order: sent again by the SDK after a lost
      // answer, it carries the same ClientRequestToken and DynamoDB answers it done. A delete sent again
      // would find nothing, and the shop would be told nothing changed after the session was revoked.
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [{ Delete: { TableName: this.table, Key: keys.session(hashToken(token)), ConditionExpression: 'attribute_exists(pk)' } }],
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof TransactionCanceledException && error.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
      throw error;
    }
  }

  async getAddress(userId: number, addressId: number): Promise<Address | undefined> {
    const item = await this.get(keys.address(userId, addressId));
    return item && toAddress(item);
  }

  async putAddress(address: Address): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: addressItem(address) }));
  }

  /** A conditional write: true once written, false when its condition does not hold; any other failure is itself. */
  private async applied(command: PutCommand | UpdateCommand | DeleteCommand): Promise<boolean> {
    try {
      await this.db.send(command as never);
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** One conditional write: its failed condition is a WriteConflict on the state. */
  private async conditional(command: PutCommand | UpdateCommand): Promise<void> {
    try {
      await this.db.send(command as never);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new WriteConflict('state', { cause: error });
      throw error;
    }
  }

  private async queryIndexItems(partition: string, by: string, limit: number): Promise<Item[]> {
    const { Items = [] } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: OPEN_ATTEMPTS_INDEX,
        KeyConditionExpression: 'gsi1pk = :partition AND gsi1sk <= :by',
        // Sort keys are `<instant>#<number>`: every key of that instant sorts before `~`.
        ExpressionAttributeValues: { ':partition': partition, ':by': `${by}#~` },
        Limit: limit,
      }),
    );
    return Items as Item[];
  }

  async findPendingEvents(shard: number, limit: number, after?: string): Promise<{ events: OutboxEvent[]; after?: string }> {
    const partition = outboxPartition(shard);
    const { Items = [], LastEvaluatedKey } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: OPEN_ATTEMPTS_INDEX,
        KeyConditionExpression: after ? 'gsi1pk = :partition AND gsi1sk > :after' : 'gsi1pk = :partition',
        ExpressionAttributeValues: { ':partition': partition, ...(after ? { ':after': after } : {}) },
        Limit: limit,
      }),
    );
    const events = (Items as Item[]).map(toOutboxEvent);
    // The next page starts after the last sort key read (unique: it ends with the event id).
    return { events, after: LastEvaluatedKey ? (LastEvaluatedKey.gsi1sk as string) : undefined };
  }

  async getEvent(eventId: string): Promise<OutboxEvent | undefined> {
    const item = await this.get(keys.event(eventId));
    return item && toOutboxEvent(item);
  }

  async recordDelivery(event: OutboxEvent, record: DeliveryRecord, now: string): Promise<boolean> {
    const { attempt, deliveredTo, status, nextAttemptAt } = record;
    const stillPending = status === 'pending';
    if (stillPending && nextAttemptAt === undefined) throw new Error(`pending event ${event.event.id} needs its next attempt time`);
    const index = stillPending ? ', next_attempt_at = :next' : ' REMOVE next_attempt_at, gsi1pk, gsi1sk';
    return this.applied(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.event(event.event.id),
        // Two deliveries at once (the dispatcher and a redelivery by hand) record one after the other.
        ConditionExpression: 'attempts = :attempts',
        UpdateExpression: `SET attempts = :count, deliveries = list_append(deliveries, :attempt), delivered_to = :to, #status = :status, updated_at = :now${index}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':attempts': event.attempts,
          ':count': event.attempts + 1,
          ':attempt': [attempt],
          ':to': deliveredTo,
          ':status': status,
          ':now': now,
          ...(stillPending ? { ':next': nextAttemptAt } : {}),
        },
      }),
    );
  }

  async getOrder(orderId: number): Promise<Order | undefined> {
    const item = await this.get(keys.order(orderId));
    return item && toOrder(item);
  }

  /**
   * Moves points between a user's buckets. `available` may only go down as far as zero: the
   * condition is what makes concurrent holds and spends safe. Nothing to move, no item.
   */
  private accountMove(userId: number, move: { available?: number; held?: number; spent?: number }): TransactItem | undefined {
    const { available = 0, held = 0, spent = 0 } = move;
    if (available === 0 && held === 0 && spent === 0) return undefined;
    return {
      Update: {
        TableName: this.table,
        Key: keys.account(userId),
        ConditionExpression: 'integral_available >= :takeAvailable AND integral_held >= :takeHeld AND integral_spent >= :takeSpent',
        UpdateExpression: 'ADD integral_available :available, integral_held :held, integral_spent :spent',
        ExpressionAttributeValues: {
          // Conditions cannot add, so "available + delta >= 0" is written as available >= -delta.
          ':takeAvailable': Math.max(0, -available),
          ':takeHeld': Math.max(0, -held),
          ':takeSpent': Math.max(0, -spent),
          ':available': available,
          ':held': held,
          ':spent': spent,
        },
      },
    };
  }

  /** The order paying with `attempt` back to unpaid, its open attempt gone. */
  private orderBackToUnpaid(attempt: Attempt, now: string): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: orderPayingWith,
        UpdateExpression: 'SET #status = :unpaid, updated_at = :now REMOVE open_attempt',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':paying': 'paying', ':open': attempt.outTradeNo, ':unpaid': 'unpaid', ':now': now },
      },
    };
  }

  /** The order paid by `attempt`, from the state it was seen in, and only while it still costs what the attempt was quoted. */
  private orderToPaid(attempt: Attempt, expected: 'unpaid' | { paying: string }, now: string): TransactItem {
    const price = attempt.quotedPrice;
    const state = expected === 'unpaid' ? orderUnpaid : orderPayingWith;
    return {
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: price ? `${state} AND ${priceUnchanged(price)}` : state,
        UpdateExpression: orderPaidUpdate,
        ExpressionAttributeNames: { '#status': 'status', ...(price?.freightOptions.length ? { '#key': 'key' } : {}) },
        ExpressionAttributeValues: {
          ':paid': 'paid',
          ':attempt': attempt.outTradeNo,
          ':now': now,
          ...(expected === 'unpaid' ? { ':unpaid': 'unpaid' } : { ':paying': 'paying', ':open': expected.paying }),
          ...(price ? priceValues(price) : {}),
        },
      },
    };
  }

  /**
   * Attempt `from` -> `to`, only from `from`. An attempt released unpaid stays in its due shard, due
   * once more after its expiry: its pay sheet may still be paid until then. A paid or refund attempt
   * leaves the index.
   */
  private attemptTransition(
    attempt: AttemptSummary,
    from: AttemptStatus,
    to: AttemptStatus,
    now: string,
    also: { payment?: GatewayPayment; refundNo?: string } = {},
  ): TransactItem {
    const { payment, refundNo } = also;
    const watchAt = nextCheckAt({ ...attempt, status: to }, Date.parse(now));
    const watched = watchAt !== undefined;
    const paid = payment ? ', transaction_id = :transaction, paid_at = :paidAt' : '';
    const refund = refundNo ? ', refund_no = :refundNo' : '';
    return {
      Update: {
        TableName: this.table,
        Key: keys.attempt(attempt.outTradeNo),
        ConditionExpression: '#status = :from',
        UpdateExpression: `SET #status = :to, updated_at = :now${paid}${refund}${watched ? ', gsi1pk = :duePartition, gsi1sk = :dueAt' : ''} REMOVE check_failures${watched ? '' : ', gsi1pk, gsi1sk'}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':from': from,
          ':to': to,
          ':now': now,
          ...(watched ? dueValues(attempt.outTradeNo, new Date(watchAt).toISOString()) : {}),
          ...(payment ? { ':transaction': payment.transactionId, ':paidAt': payment.paidAt } : {}),
          ...(refundNo ? { ':refundNo': refundNo } : {}),
        },
      },
    };
  }

  /** The event of the change it is written with (the outbox): named after that change, so it is written once. */
  private eventPut(event: ShopEvent): TransactItem {
    return { Put: { TableName: this.table, Item: eventItem(event), ConditionExpression: 'attribute_not_exists(pk)' } };
  }

  private refundPut(refund: Refund): TransactItem {
    return { Put: { TableName: this.table, Item: refundItem(refund), ConditionExpression: 'attribute_not_exists(pk)' } };
  }

  /** A pending refund becomes final and leaves the sweeper's index. */
  private refundTransition(refund: Refund, to: 'succeeded' | 'failed', now: string, set: string, values: Item): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: keys.refund(refund.outRefundNo),
        ConditionExpression: '#status = :pending',
        UpdateExpression: `${set}, #status = :to, updated_at = :now REMOVE gsi1pk, gsi1sk, next_check_at`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':pending': 'pending', ':to': to, ':now': now, ...values },
      },
    };
  }

  /** The order refunding with this refund: refunded (succeeded) or back to paid (failed), its summary following. */
  private orderRefundTransition(refund: Refund, to: 'refunded' | 'paid', status: 'succeeded' | 'failed', now: string, refundedAt?: string): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: keys.order(refund.orderId),
        ConditionExpression: '#status = :refunding AND refund.out_refund_no = :no',
        UpdateExpression: `SET #status = :to, refund.#status = :refundStatus, updated_at = :now${refundedAt ? ', refund.refunded_at = :refundedAt' : ''}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':refunding': 'refunding',
          ':no': refund.outRefundNo,
          ':to': to,
          ':refundStatus': status,
          ':now': now,
          ...(refundedAt ? { ':refundedAt': refundedAt } : {}),
        },
      },
    };
  }

  /** Points of a refunded order back to the user: one entry per attempt, so they can come back once only. */
  private refundLedgerPut(refund: Refund, now: string): TransactItem | undefined {
    if (refund.points === 0) return undefined;
    return {
      Put: {
        TableName: this.table,
        Item: ledgerItem({ userId: refund.userId, orderId: refund.orderId, outTradeNo: refund.outTradeNo, kind: 'refund', points: refund.points }, now),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** The key is the movement itself (attempt + kind), so a repeated write can never count twice. */
  private ledgerPut(attempt: Attempt, outTradeNo: string, kind: LedgerKind, points: number, now: string): TransactItem | undefined {
    if (points === 0) return undefined;
    return {
      Put: {
        TableName: this.table,
        Item: ledgerItem({ userId: attempt.userId, orderId: attempt.orderId, outTradeNo, kind, points }, now),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** @param pointsItem the account move, if any: its failed condition means the points moved, not the state */
  private async transact(items: (TransactItem | undefined)[], pointsItem?: TransactItem): Promise<void> {
    const present = items.filter((item): item is TransactItem => item !== undefined);
    try {
      await this.db.send(new TransactWriteCommand({ TransactItems: present }));
    } catch (error) {
      if (error instanceof TransactionCanceledException) {
        const reasons = error.CancellationReasons ?? [];
        const failed = reasons.findIndex((r) => r.Code === 'ConditionalCheckFailed');
        if (failed >= 0) throw new WriteConflict(present[failed] === pointsItem ? 'points' : 'state', { cause: error });
        // DynamoDB cancels one of two transactions racing on an item: a lost race like any other.
        if (reasons.some((r) => r.Code === 'TransactionConflict')) throw new WriteConflict('state', { cause: error });
      }
      throw error;
    }
  }

  private async transactGet(itemKeys: ItemKey[]): Promise<(Item | undefined)[]> {
    try {
      const { Responses = [] } = await this.db.send(
        new TransactGetCommand({ TransactItems: itemKeys.map((Key) => ({ Get: { TableName: this.table, Key } })) }),
      );
      return itemKeys.map((_, i) => Responses[i]?.Item as Item | undefined);
    } catch (error) {
      // A read racing a transaction on the same items is cancelled: read again.
      if (error instanceof TransactionCanceledException) throw new WriteConflict('state', { cause: error });
      throw error;
    }
  }

  /** Each item as last written (strongly consistent), in one request: read-committed, not one instant's snapshot. */
  private async batchGet(itemKeys: ItemKey[]): Promise<(Item | undefined)[]> {
    const { Responses = {}, UnprocessedKeys = {} } = await this.db.send(
      new BatchGetCommand({ RequestItems: { [this.table]: { Keys: itemKeys, ConsistentRead: true } } }),
    );
    // DynamoDB may leave keys unread (throttled): those are read one by one, with the SDK's retries.
    const unread = (UnprocessedKeys[this.table]?.Keys ?? []) as ItemKey[];
    const items = [...(Responses[this.table] ?? []), ...(await Promise.all(unread.map((key) => this.get(key))))];
    return itemKeys.map((key) => items.find((item) => item?.pk === key.pk && item.sk === key.sk));
  }

  private async get(key: ItemKey): Promise<Item | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return Item;
  }
}

function dueValues(outTradeNo: string, dueAt: string): { ':duePartition': string; ':dueAt': string } {
  const { gsi1pk, gsi1sk } = dueIndex(outTradeNo, dueAt);
  return { ':duePartition': gsi1pk, ':dueAt': gsi1sk };
}
