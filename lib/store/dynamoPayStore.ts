import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, QueryCommand, TransactGetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type Attempt,
  type AttemptStatus,
  type AttemptSummary,
  type GatewayPayment,
  type Order,
  type PointsAccount,
  RELEASED_ATTEMPT_STATUSES,
} from '../domain/model';
import { attemptItem, fromSummary, type Item, ledgerItem, toAccount, toAddress, toAttempt, toOrder } from './items';
import { hashToken, INDEX_PARTITION, type ItemKey, indexSortKey, keys, type LedgerKind, OPEN_ATTEMPTS_INDEX } from './keys';
import { type AttemptChange, type PayContext, type PayStore, type Session, WriteConflict } from './payStore';

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

export class DynamoPayStore implements PayStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async findSession(token: string): Promise<Session | undefined> {
    const item = await this.get(keys.session(hashToken(token)));
    return item && { userId: item.user_id as number, expiresAt: item.expires_at as string };
  }

  async loadPayContext(userId: number, orderId: number, addressId: number): Promise<PayContext> {
    // One serializable read: separate reads could see the points of a concurrent attempt but not its order.
    const [order, address, account] = await this.transactGet([keys.order(orderId), keys.address(userId, addressId), keys.account(userId)]);
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
      ],
      account,
    );
  }

  async releaseAttempt(attempt: Attempt, status: Extract<AttemptStatus, 'failed' | 'expired'>, now: string, orderLinked = true): Promise<boolean> {
    const order: TransactItem = {
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: orderPayingWith,
        UpdateExpression: 'SET #status = :unpaid, updated_at = :now REMOVE open_attempt',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':paying': 'paying', ':open': attempt.outTradeNo, ':unpaid': 'unpaid', ':now': now },
      },
    };
    try {
      await this.transact([
        this.accountMove(attempt.userId, { available: attempt.points, held: -attempt.points }),
        this.ledgerPut(attempt, attempt.outTradeNo, 'release', attempt.points, now),
        orderLinked ? order : undefined,
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
      this.attemptTransition(attempt, 'open', 'paid', now, payment),
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
        this.attemptTransition(attempt, attempt.status, 'paid', now, payment),
        replaces && this.attemptTransition(replaces, 'open', 'superseded', now),
        replaces && this.ledgerPut(attempt, replaces.outTradeNo, 'release', replaces.points, now),
      ],
      account,
    );
  }

  async markRefundRequired(attempt: Attempt, payment: GatewayPayment, now: string): Promise<void> {
    const stillHolds = attempt.status === 'open';
    await this.transact([
      stillHolds ? this.accountMove(attempt.userId, { available: attempt.points, held: -attempt.points }) : undefined,
      stillHolds ? this.ledgerPut(attempt, attempt.outTradeNo, 'release', attempt.points, now) : undefined,
      this.attemptTransition(attempt, attempt.status, 'refund_required', now, payment),
    ]);
  }

  async findOpenAttempts(expiresBy: string, limit: number): Promise<Attempt[]> {
    return this.queryIndex(INDEX_PARTITION.open, expiresBy, limit);
  }

  async findWatchedAttempts(expiredBy: string, limit: number): Promise<Attempt[]> {
    return this.queryIndex(INDEX_PARTITION.watch, expiredBy, limit);
  }

  async unwatchAttempt(attempt: Attempt): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.attempt(attempt.outTradeNo),
          ConditionExpression: '#status = :status AND gsi1pk = :watched',
          UpdateExpression: 'REMOVE gsi1pk, gsi1sk',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': attempt.status, ':watched': INDEX_PARTITION.watch },
        }),
      );
    } catch (error) {
      // Paid meanwhile (it left the index with it): nothing to do.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  private async queryIndex(partition: string, expiresBy: string, limit: number): Promise<Attempt[]> {
    const { Items = [] } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: OPEN_ATTEMPTS_INDEX,
        KeyConditionExpression: 'gsi1pk = :partition AND gsi1sk <= :by',
        // The sort key is `<expires_at>#<out_trade_no>`: every key of that instant sorts before `~`.
        ExpressionAttributeValues: { ':partition': partition, ':by': `${expiresBy}#~` },
        Limit: limit,
      }),
    );
    return Items.map(toAttempt);
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
        ConditionExpression: 'integral_available >= :takeAvailable AND integral_held >= :takeHeld',
        UpdateExpression: 'ADD integral_available :available, integral_held :held, integral_spent :spent',
        ExpressionAttributeValues: {
          // Conditions cannot add, so "available + delta >= 0" is written as available >= -delta.
          ':takeAvailable': Math.max(0, -available),
          ':takeHeld': Math.max(0, -held),
          ':available': available,
          ':held': held,
          ':spent': spent,
        },
      },
    };
  }

  private orderToPaid(attempt: Attempt, expected: 'unpaid' | { paying: string }, now: string): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: expected === 'unpaid' ? orderUnpaid : orderPayingWith,
        UpdateExpression: orderPaidUpdate,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':paid': 'paid',
          ':attempt': attempt.outTradeNo,
          ':now': now,
          ...(expected === 'unpaid' ? { ':unpaid': 'unpaid' } : { ':paying': 'paying', ':open': expected.paying }),
        },
      },
    };
  }

  /**
   * Attempt `from` -> `to`, only from `from`. An attempt released unpaid moves from the open-attempts
   * partition to the watched one: its pay sheet may still be paid until it expires, so the sweeper
   * asks the gateway once more after that. A paid or refund attempt leaves the index.
   */
  private attemptTransition(attempt: AttemptSummary, from: AttemptStatus, to: AttemptStatus, now: string, payment?: GatewayPayment): TransactItem {
    const watched = RELEASED_ATTEMPT_STATUSES.includes(to);
    const paid = payment ? ', transaction_id = :transaction, paid_at = :paidAt' : '';
    return {
      Update: {
        TableName: this.table,
        Key: keys.attempt(attempt.outTradeNo),
        ConditionExpression: '#status = :from',
        UpdateExpression: `SET #status = :to, updated_at = :now${paid}${watched ? ', gsi1pk = :watched, gsi1sk = :expiry' : ''}${watched ? '' : ' REMOVE gsi1pk, gsi1sk'}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':from': from,
          ':to': to,
          ':now': now,
          ...(watched ? { ':watched': INDEX_PARTITION.watch, ':expiry': indexSortKey(attempt) } : {}),
          ...(payment ? { ':transaction': payment.transactionId, ':paidAt': payment.paidAt } : {}),
        },
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
        if (failed >= 0) throw new WriteConflict(pointsItem !== undefined && present[failed] === pointsItem ? 'points' : 'state', { cause: error });
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

  private async get(key: ItemKey): Promise<Item | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return Item;
  }
}
