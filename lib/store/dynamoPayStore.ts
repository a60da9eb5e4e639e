import { createHash } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, TransactGetCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Address, Attempt, AttemptStatus, AttemptSummary, Order, PointsAccount } from '../domain/model';
import { WriteConflict, type AttemptChange, type PayContext, type PayStore, type Session } from './payStore';

type Item = Record<string, unknown>;
type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/** Every key of the single table. Only this module and the fixture writer know them. */
export const keys = {
  session: (tokenHash: string) => ({ pk: `SESSION#${tokenHash}`, sk: 'SESSION' }),
  account: (userId: number) => ({ pk: `USER#${userId}`, sk: 'ACCOUNT' }),
  address: (userId: number, addressId: number) => ({ pk: `USER#${userId}`, sk: `ADDRESS#${addressId}` }),
  ledger: (userId: number, outTradeNo: string, kind: LedgerKind) => ({ pk: `USER#${userId}`, sk: `LEDGER#${outTradeNo}#${kind}` }),
  order: (orderId: number) => ({ pk: `ORDER#${orderId}`, sk: 'ORDER' }),
  attempt: (outTradeNo: string) => ({ pk: `ATTEMPT#${outTradeNo}`, sk: 'ATTEMPT' }),
};

/** Open attempts are in the sparse index `open-attempts`, sorted by expiry, so the sweeper never scans. */
export const OPEN_ATTEMPTS_INDEX = 'open-attempts';
const OPEN_ATTEMPT_PARTITION = 'OPEN';

/** hold: available -> held; release: held -> available; spend: available -> spent; capture: held -> spent. */
export type LedgerKind = 'hold' | 'release' | 'spend' | 'capture';

/** Tokens are stored as their SHA-256, so a leaked table leaks no usable token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

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
    const { Responses = [] } = await this.db.send(
      new TransactGetCommand({
        TransactItems: [keys.order(orderId), keys.address(userId, addressId), keys.account(userId)].map((Key) => ({ Get: { TableName: this.table, Key } })),
      }),
    );
    const [order, address, account] = Responses.map((r) => r?.Item as Item | undefined);
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

  async commitAttempt({ attempt, previous, now }: AttemptChange): Promise<void> {
    const paysNow = attempt.status === 'paid';
    const released = previous?.points ?? 0;
    const items: TransactItem[] = [];

    const available = released - attempt.points;
    if (available !== 0 || released !== 0 || attempt.points !== 0) {
      items.push({
        Update: {
          TableName: this.table,
          Key: keys.account(attempt.userId),
          // Conditions cannot add, so "available + released >= points" is written as available >= points - released.
          ConditionExpression: 'integral_available >= :needed',
          UpdateExpression: 'ADD integral_available :available, integral_held :held, integral_spent :spent',
          ExpressionAttributeValues: {
            ':needed': -available,
            ':available': available,
            ':held': (paysNow ? 0 : attempt.points) - released,
            ':spent': paysNow ? attempt.points : 0,
          },
        },
      });
    }
    const pointsItem = items.length === 1 ? 0 : -1;

    items.push({
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: previous
          ? 'user_id = :user AND #status = :paying AND open_attempt.out_trade_no = :previous'
          : 'user_id = :user AND #status = :unpaid',
        UpdateExpression: paysNow
          ? 'SET #status = :paid, paid_attempt = :attempt, paid_at = :now, updated_at = :now REMOVE open_attempt'
          : 'SET #status = :paying, open_attempt = :summary, updated_at = :now',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':user': attempt.userId,
          ':now': now,
          ...(previous ? { ':paying': 'paying', ':previous': previous.outTradeNo } : { ':unpaid': 'unpaid' }),
          ...(paysNow ? { ':paid': 'paid', ':attempt': attempt.outTradeNo } : { ':paying': 'paying', ':summary': fromSummary(attempt) }),
        },
      },
    });

    if (previous) {
      items.push(this.closeAttemptItem(previous.outTradeNo, 'superseded', now));
      if (previous.points > 0) items.push(this.ledgerPut(attempt.userId, previous.outTradeNo, attempt.orderId, 'release', previous.points, now));
    }
    items.push({
      Put: { TableName: this.table, Item: fromAttempt(attempt), ConditionExpression: 'attribute_not_exists(pk)' },
    });
    if (attempt.points > 0) {
      items.push(this.ledgerPut(attempt.userId, attempt.outTradeNo, attempt.orderId, paysNow ? 'spend' : 'hold', attempt.points, now));
    }

    await this.transact(items, pointsItem);
  }

  async releaseAttempt(attempt: Attempt, status: Extract<AttemptStatus, 'failed' | 'expired'>, now: string): Promise<boolean> {
    const items: TransactItem[] = [];
    if (attempt.points > 0) {
      items.push({
        Update: {
          TableName: this.table,
          Key: keys.account(attempt.userId),
          ConditionExpression: 'integral_held >= :points',
          UpdateExpression: 'ADD integral_available :points, integral_held :minus',
          ExpressionAttributeValues: { ':points': attempt.points, ':minus': -attempt.points },
        },
      });
      items.push(this.ledgerPut(attempt.userId, attempt.outTradeNo, attempt.orderId, 'release', attempt.points, now));
    }
    items.push({
      Update: {
        TableName: this.table,
        Key: keys.order(attempt.orderId),
        ConditionExpression: '#status = :paying AND open_attempt.out_trade_no = :attempt',
        UpdateExpression: 'SET #status = :unpaid, updated_at = :now REMOVE open_attempt',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':paying': 'paying', ':attempt': attempt.outTradeNo, ':unpaid': 'unpaid', ':now': now },
      },
    });
    items.push(this.closeAttemptItem(attempt.outTradeNo, status, now));
    try {
      await this.transact(items, -1);
      return true;
    } catch (error) {
      if (error instanceof WriteConflict) return false;
      throw error;
    }
  }

  private closeAttemptItem(outTradeNo: string, status: AttemptStatus, now: string): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: keys.attempt(outTradeNo),
        ConditionExpression: '#status = :open',
        UpdateExpression: 'SET #status = :status, closed_at = :now REMOVE gsi1pk, gsi1sk',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':open': 'open', ':status': status, ':now': now },
      },
    };
  }

  private ledgerPut(userId: number, outTradeNo: string, orderId: number, kind: LedgerKind, points: number, now: string): TransactItem {
    return {
      Put: {
        TableName: this.table,
        // The key is the movement itself (attempt + kind), so a repeated write can never count twice.
        Item: { ...keys.ledger(userId, outTradeNo, kind), entity: 'ledger', user_id: userId, order_id: orderId, out_trade_no: outTradeNo, kind, points, created_at: now },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  private async transact(items: TransactItem[], pointsItem: number): Promise<void> {
    try {
      await this.db.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (error) {
      if (error instanceof TransactionCanceledException) {
        const failed = (error.CancellationReasons ?? []).findIndex((r) => r.Code === 'ConditionalCheckFailed');
        if (failed >= 0) throw new WriteConflict(failed === pointsItem ? 'points' : 'state');
      }
      throw error;
    }
  }

  private async get(key: { pk: string; sk: string }): Promise<Item | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return Item;
  }
}

function toOrder(item: Item): Order {
  const open = item.open_attempt as Item | undefined;
  return {
    orderId: item.order_id as number,
    userId: item.user_id as number,
    goodsName: item.goods_name as string,
    goodsFen: item.goods_fen as number,
    freeShipping: item.free_shipping as boolean,
    freightOptions: ((item.freight_options as Item[]) ?? []).map((o) => ({ key: o.key as number, name: o.name as string, feeFen: o.fee_fen as number })),
    status: item.status as Order['status'],
    openAttempt: open && toSummary(open),
  };
}

function toAddress(item: Item): Address {
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

function toAccount(item: Item): PointsAccount {
  return {
    userId: item.user_id as number,
    available: item.integral_available as number,
    held: item.integral_held as number,
    spent: item.integral_spent as number,
  };
}

function toSummary(item: Item): AttemptSummary {
  return {
    outTradeNo: item.out_trade_no as string,
    method: item.method as AttemptSummary['method'],
    cashFen: item.cash_fen as number,
    points: item.points as number,
    addressId: item.address_id as number,
    expiresAt: item.expires_at as string,
  };
}

function fromSummary(a: AttemptSummary): Item {
  return { out_trade_no: a.outTradeNo, method: a.method, cash_fen: a.cashFen, points: a.points, address_id: a.addressId, expires_at: a.expiresAt };
}

function toAttempt(item: Item): Attempt {
  return {
    ...toSummary(item),
    orderId: item.order_id as number,
    userId: item.user_id as number,
    status: item.status as AttemptStatus,
    subject: item.subject as string,
    address: toAddress(item.address as Item),
    createdAt: item.created_at as string,
    paidAt: item.paid_at as string | undefined,
  };
}

export function fromAddress(a: Address): Item {
  return { address_id: a.addressId, user_id: a.userId, name: a.name, phone: a.phone, province: a.province, city: a.city, district: a.district, detail: a.detail };
}

function fromAttempt(a: Attempt): Item {
  return {
    ...keys.attempt(a.outTradeNo),
    entity: 'attempt',
    ...fromSummary(a),
    order_id: a.orderId,
    user_id: a.userId,
    status: a.status,
    subject: a.subject,
    address: fromAddress(a.address),
    created_at: a.createdAt,
    paid_at: a.paidAt,
    ...(a.status === 'open' ? { gsi1pk: OPEN_ATTEMPT_PARTITION, gsi1sk: `${a.expiresAt}#${a.outTradeNo}` } : {}),
  };
}
