import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dueShard } from '../../../lib/domain/checkSchedule';
import type { OutboxEvent } from '../../../lib/domain/events';
import type { Attempt, Order, Refund } from '../../../lib/domain/model';
import { newRefund } from '../../../lib/domain/refund';
import { runShopCommand } from '../../../lib/shop/shopCommands';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { DynamoPayStore } from '../../../lib/store/dynamoPayStore';
import { dueIndex } from '../../../lib/store/items';
import { ENTITY, keys, sweepLeaseKey } from '../../../lib/store/keys';
import { type OrderFields, WriteConflict } from '../../../lib/store/payStore';
import { rejection } from '../../support/rejection';
import { recordingClient } from '../../support/sentRequests';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { leaveKeysUnprocessed } from '../../support/unprocessedKeys';
import { givenUser, pay } from '../../support/world';

/**
 * Each condition of the store's writes, on its own: a write computed from a state that has since
 * moved must change nothing. (The concurrency tests prove the same through races; these name the
 * condition that holds the line.)
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

const attemptOf = async (outTradeNo: string) => (await stack.app.store.getAttempt(outTradeNo)) as Attempt;
/** Sets one points bucket of an account as a hand edit of the table would, out of step with its ledger. */
const setAccountBucket = (userId: number, bucket: 'integral_held' | 'integral_spent', points: number) =>
  stack.db.send(
    new UpdateCommand({
      TableName: TABLE,
      Key: keys.account(userId),
      UpdateExpression: 'SET #bucket = :points',
      ExpressionAttributeNames: { '#bucket': bucket },
      ExpressionAttributeValues: { ':points': points },
    }),
  );

/** A store whose table is not there: DynamoDB answers ResourceNotFoundException, which no condition explains. */
const broken = () => new DynamoPayStore(stack.db, 'paynow-no-such-table');
const notFound = { name: 'ResourceNotFoundException' };

/**
 * A store whose client answers every request of `operation` with `error`, for DynamoDB's answers that
 * dynalite never gives (it runs one transaction at a time and does not throttle).
 */
async function withDatabaseAnswering(operation: string, error: Error, use: (store: DynamoPayStore) => Promise<void>): Promise<void> {
  const client = createDocumentClient(stack.dynamo.endpoint);
  client.middlewareStack.add((next, context) => (args) => (context.commandName === `${operation}Command` ? Promise.reject(error) : next(args)), {
    step: 'initialize',
    name: 'answerWith',
  });
  try {
    await use(new DynamoPayStore(client, TABLE));
  } finally {
    client.destroy();
  }
}

/** A transaction DynamoDB cancelled, with one reason per item. */
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

describe('reads', () => {
  it('every item is read strongly consistent: a decision is never taken from a copy older than the last write', async () => {
    // dynalite reads consistently whatever is asked; DynamoDB's default is an eventually consistent read.
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const { client, sent } = recordingClient(stack.dynamo.endpoint);
    const store = new DynamoPayStore(client, TABLE);
    try {
      expect(await store.getOrder(user.orderId)).toMatchObject({ status: 'paying' });
      expect(await store.getAttempt(outTradeNo)).toMatchObject({ status: 'open' });
      expect(await store.getAccount(user.userId)).toMatchObject({ held: 300 });
    } finally {
      client.destroy();
    }
    expect(sent.map((request) => [request.operation, request.input.ConsistentRead])).toEqual([
      ['GetItem', true],
      ['GetItem', true],
      ['GetItem', true],
    ]);
  });
});

describe("the pay's read", () => {
  it("latest: order, address and points in one BatchGetItem, each strongly consistent, the same as the snapshot's; a missing item is undefined", async () => {
    const user = await givenUser(stack, 1000);
    await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const { client, sent } = recordingClient(stack.dynamo.endpoint);
    const store = new DynamoPayStore(client, TABLE);
    try {
      const latest = await store.loadPayContext(user.userId, user.orderId, user.addressId, 'latest');
      expect(latest).toMatchObject({ order: { status: 'paying' }, address: { addressId: user.addressId }, account: { available: 700, held: 300 } });
      expect(await store.loadPayContext(user.userId, user.orderId, user.addressId, 'snapshot')).toEqual(latest);
      expect(await store.loadPayContext(user.userId, user.orderId, user.addressId + 5, 'latest')).toEqual({ ...latest, address: undefined });
    } finally {
      client.destroy();
    }
    expect(sent.map((request) => request.operation)).toEqual(['BatchGetItem', 'TransactGetItems', 'BatchGetItem']);
    expect(sent[0].input).toMatchObject({ RequestItems: { [TABLE]: { ConsistentRead: true } } });
  });

  it.each([
    ['the first key answered', 1],
    ['none answered', 0],
  ])('keys DynamoDB leaves unprocessed (throttled) are read one by one, strongly consistent: %s', async (_title, answeredKeys) => {
    const user = await givenUser(stack, 1000);
    await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const { client, sent } = recordingClient(stack.dynamo.endpoint);
    leaveKeysUnprocessed(client, TABLE, answeredKeys);
    const store = new DynamoPayStore(client, TABLE);
    try {
      expect(await store.loadPayContext(user.userId, user.orderId, user.addressId, 'latest')).toEqual(
        await stack.app.store.loadPayContext(user.userId, user.orderId, user.addressId, 'snapshot'),
      );
    } finally {
      client.destroy();
    }
    expect(sent.map((request) => [request.operation, request.input.ConsistentRead])).toEqual([
      ['BatchGetItem', undefined],
      ...Array(3 - answeredKeys).fill(['GetItem', true]),
    ]);
  });
});

describe('releaseAttempt', () => {
  it('leaves alone an attempt that was paid since the copy it was given was read', async () => {
    // Two orders, each with an attempt holding 300 points: the account keeps enough held points for a
    // second release, so only the attempt's own state can refuse it.
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const first = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    await pay(stack, { ...user, orderId: user.orderIds[1] }, { method: 4, points: 300, priceFen: 8500 });
    const stale = await attemptOf(first.outTradeNo);
    await stack.app.store.captureAttempt(
      stale,
      { channel: 'wechat', outTradeNo: first.outTradeNo, transactionId: 't1', amountFen: 8500, paidAt: new Date().toISOString() },
      new Date().toISOString(),
    );
    const before = await state.snapshot();
    expect(await stack.app.store.releaseAttempt(stale, 'expired', new Date().toISOString(), false)).toBe(false);
    expect(await state.snapshot()).toEqual(before);
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'paid' });
  });
  it('refuses to release more points than the account holds (held out of step with its attempts): nothing changes', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const setHeld = (held: number) => setAccountBucket(user.userId, 'integral_held', held);
    await setHeld(100);
    try {
      const before = await state.snapshot();
      expect(await stack.app.store.releaseAttempt(await attemptOf(outTradeNo), 'expired', new Date().toISOString())).toBe(false);
      expect(await state.snapshot()).toEqual(before);
    } finally {
      await setHeld(800); // as its attempt holds, for the books checked after all
    }
  });
});

describe('rememberPrepayId', () => {
  it('keeps nothing for an attempt the order no longer pays with: no error, no change', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const before = await state.snapshot();
    await expect(stack.app.store.rememberPrepayId({ orderId: user.orderId, outTradeNo: `${user.orderId}T1` }, 'wx-other')).resolves.toBeUndefined();
    expect(await state.snapshot()).toEqual(before);
    await stack.app.store.rememberPrepayId({ orderId: user.orderId, outTradeNo }, 'wx-kept');
    expect(await state.order(user.orderId)).toMatchObject({ open_attempt: { out_trade_no: outTradeNo, prepay_id: 'wx-kept' } });
  });
});

describe('a fault of the database is never taken for a lost race', () => {
  // Each of these writes swallows only its own condition failing; anything else must reach the caller
  // (and the function's error, its alarm and the gateway's retry).
  const now = () => new Date().toISOString();

  it('claimGatewayCheck, rememberPrepayId, releaseAttempt and recordPaymentConflict reject with it', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const attempt = await attemptOf(outTradeNo);
    const payment = { channel: 'wechat' as const, outTradeNo, transactionId: 't-broken', amountFen: 8500, paidAt: now() };
    await expect(broken().claimGatewayCheck(outTradeNo, new Date(), 30_000)).rejects.toMatchObject(notFound);
    await expect(broken().rememberPrepayId(attempt, 'wx-1')).rejects.toMatchObject(notFound);
    await expect(broken().releaseAttempt(attempt, 'expired', now())).rejects.toMatchObject(notFound);
    await expect(broken().recordPaymentConflict(attempt, payment, now())).rejects.toMatchObject(notFound);
  });

  it("the sweeper's index moves, its lease and a refund's follow-up reject with it", async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const attempt = await attemptOf(outTradeNo);
    await expect(broken().rescheduleCheck(attempt, now(), 1)).rejects.toMatchObject(notFound);
    await expect(broken().claimSweepLease(7, 'worker-a', now(), now())).rejects.toMatchObject(notFound);
    await expect(broken().releaseSweepLease(7, 'worker-a')).rejects.toMatchObject(notFound);
    const refund = newRefund({ ...attempt, status: 'paid' }, 'order', '用户取消', new Date());
    await expect(broken().deferRefund(refund, { nextCheckAt: now(), accepted: false }, now())).rejects.toMatchObject(notFound);
  });
});

describe('the due index', () => {
  const now = () => new Date().toISOString();

  it('pages through a shard: one attempt a page, each once, in the order of one long page', async () => {
    const user = await givenUser(stack, 0, ['88.00', '88.00', '88.00']);
    const paid = [];
    for (const orderId of user.orderIds) paid.push(await pay(stack, { ...user, orderId }, { method: 1 }));
    const shard = dueShard(paid[0].outTradeNo);
    const far = new Date(Date.now() + 365 * 86_400_000).toISOString();
    const whole = (await stack.app.store.findDueAttempts(shard, far, 1000)).attempts.map((a) => a.outTradeNo);
    expect(whole).toContain(paid[0].outTradeNo);
    const paged: string[] = [];
    let after: string | undefined;
    do {
      const page = await stack.app.store.findDueAttempts(shard, far, 1, after);
      paged.push(...page.attempts.map((a) => a.outTradeNo));
      after = page.after;
    } while (after && paged.length <= whole.length);
    expect(paged).toEqual(whole);
  });

  it('takes an attempt out of the index with its failure count, and leaves alone one that moved since it was read', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const read = await attemptOf(outTradeNo);
    const later = new Date(Date.now() + 600_000).toISOString();
    expect(await stack.app.store.rescheduleCheck(read, later, 2)).toBe(true);
    expect(await state.attempt(outTradeNo)).toMatchObject({ check_failures: 2, gsi1sk: `${later}#${outTradeNo}` });
    // `read` still names the old due time: the sweep that read it lost the race, and changes nothing.
    const before = await state.snapshot();
    expect(await stack.app.store.rescheduleCheck(read, now(), 3)).toBe(false);
    expect(await stack.app.store.unwatchAttempt(read)).toBe(false);
    expect(await state.snapshot()).toEqual(before);
    expect(await stack.app.store.unwatchAttempt(await attemptOf(outTradeNo))).toBe(true);
    const unwatched = await state.attempt(outTradeNo);
    expect(unwatched).not.toHaveProperty('gsi1pk');
    expect(unwatched).not.toHaveProperty('gsi1sk');
    expect(unwatched).not.toHaveProperty('check_failures');
    // Back where reconcile expects an open attempt (moveToDueIndex moves only one that is in the index).
    await state.placeInIndex(outTradeNo, dueIndex(outTradeNo, now()));
  });

  it('finds attempts of the partitions of before the due index, OPEN first, never more than asked', async () => {
    const user = await givenUser(stack, 0, ['88.00', '88.00', '88.00', '88.00']);
    const legacy: string[] = [];
    for (const [i, orderId] of user.orderIds.entries()) {
      const { outTradeNo } = await pay(stack, { ...user, orderId }, { method: 1 });
      await state.placeInIndex(outTradeNo, { gsi1pk: i < 2 ? 'OPEN' : 'WATCH', gsi1sk: `${now()}#${outTradeNo}` });
      legacy.push(outTradeNo);
    }
    const found = async (limit: number) => (await stack.app.store.findLegacyIndexed(limit)).map((a) => a.outTradeNo);
    expect((await found(2)).sort()).toEqual(legacy.slice(0, 2).sort());
    expect(await found(1)).toHaveLength(1);
    // Both of OPEN, then only what is left of the limit from WATCH: one of its two.
    const three = await found(3);
    expect(three).toHaveLength(3);
    expect(three).toEqual(expect.arrayContaining(legacy.slice(0, 2)));
    expect((await found(4)).sort()).toEqual([...legacy].sort());
    for (const outTradeNo of legacy) expect(await stack.app.store.moveToDueIndex(await attemptOf(outTradeNo), now())).toBe(true);
    expect(await stack.app.store.findLegacyIndexed(4)).toEqual([]);
  });
});

describe('the sweep lease', () => {
  const lease = (group: number) => state.item(sweepLeaseKey(group));

  it('is given back only by its owner: a worker whose lease was taken over leaves the new one alone', async () => {
    const start = '2026-11-29T10:00:00.000Z';
    const until = '2026-11-29T10:01:00.000Z';
    expect(await stack.app.store.claimSweepLease(41, 'worker-a', start, until)).toBe(true);
    expect(await stack.app.store.claimSweepLease(41, 'worker-b', start, until)).toBe(false);
    await expect(stack.app.store.releaseSweepLease(41, 'worker-b')).resolves.toBeUndefined();
    expect(await lease(41)).toMatchObject({ entity: ENTITY.sweepLease, owner: 'worker-a', until });
    await stack.app.store.releaseSweepLease(41, 'worker-a');
    expect(await lease(41)).toMatchObject({ owner: 'worker-a', until: new Date(0).toISOString() });
    expect(await stack.app.store.claimSweepLease(41, 'worker-b', start, until)).toBe(true);
  });
});

describe('commitAttempt', () => {
  it('refuses to hold points that were spent since the pay was quoted (a lost race on the points)', async () => {
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const first = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const attempt = await attemptOf(first.outTradeNo);
    // The points went elsewhere between the read and the write: the same attempt, for the other order.
    const again: Attempt = { ...attempt, outTradeNo: `${user.orderIds[1]}T1`, orderId: user.orderIds[1] };
    const order = (await stack.app.store.getOrder(user.orderIds[1]))!;
    const before = await state.snapshot();
    const error = await rejection(stack.app.store.commitAttempt({ attempt: again, quoted: order, now: new Date().toISOString() }));
    expect(error).toEqual(new WriteConflict('points'));
    // The words a person reads in that line: toEqual above only compares it with another WriteConflict.
    expect((error as Error).message).toBe('conditional write failed on points');
    // What DynamoDB answered stays with it, for the line that reports a race lost for good.
    expect((error as Error).cause).toMatchObject({ name: 'TransactionCanceledException', CancellationReasons: expect.any(Array) });
    expect(await state.snapshot()).toEqual(before);
  });

  it('pays, with points only or captured, an order whose freight is chosen from its options, the options compared one by one', async () => {
    const user = await givenUser(stack, 10_800, ['88.00', '88.00'], '12.00');
    const byPoints = await pay(stack, user, { method: 3, points: 10_000, priceFen: 0, freightMode: 2, freightKey: 2 });
    expect(byPoints).toMatchObject({ outcome: 'paid' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: byPoints.outTradeNo });
    const second = { ...user, orderId: user.orderIds[1] };
    const { outTradeNo } = await pay(stack, second, { method: 4, points: 800, priceFen: 9200, freightMode: 2, freightKey: 2 });
    const payment = { channel: 'wechat' as const, outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 9200, paidAt: new Date().toISOString() };
    await stack.app.store.captureAttempt(await attemptOf(outTradeNo), payment, new Date().toISOString());
    expect(await state.order(second.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 0, integral_held: 0, integral_spent: 10_800 });
  });

  it('opens a cash-only attempt for a user who has no points account, and creates none', async () => {
    const user = await givenUser(stack, 0);
    await stack.db.send(new DeleteCommand({ TableName: TABLE, Key: keys.account(user.userId) }));
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open', points: 0, cash_fen: 8800 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paying' });
    expect(await state.account(user.userId)).toBeUndefined();
  });

  it('refuses to open an attempt on an order that is no longer unpaid (a lost race on the order)', async () => {
    const user = await givenUser(stack, 0);
    const order = (await stack.app.store.getOrder(user.orderId))!;
    await state.setOrderStatus(user.orderId, 'closed');
    const first = await pay(stack, await givenUser(stack, 0), { method: 1 });
    const attempt: Attempt = {
      ...(await attemptOf(first.outTradeNo)),
      outTradeNo: `${user.orderId}T1`,
      orderId: user.orderId,
      userId: user.userId,
      address: { ...(await attemptOf(first.outTradeNo)).address, userId: user.userId },
    };
    const before = await state.snapshot();
    await expect(stack.app.store.commitAttempt({ attempt, quoted: order, now: new Date().toISOString() })).rejects.toEqual(new WriteConflict('state'));
    expect(await state.snapshot()).toEqual(before);
    await stack.seed({ orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }] });
  });
  it('tells a lost race on the order from one on the points: an order no longer unpaid is the state, though the points would move', async () => {
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const first = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    const closed = user.orderIds[1] as number;
    const order = (await stack.app.store.getOrder(closed))!;
    await runShopCommand(stack.app, { command: 'close-order', order_id: closed });
    const attempt: Attempt = { ...(await attemptOf(first.outTradeNo)), outTradeNo: `${closed}T1`, orderId: closed };
    const before = await state.snapshot();
    await expect(stack.app.store.commitAttempt({ attempt, quoted: order, now: new Date().toISOString() })).rejects.toEqual(new WriteConflict('state'));
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('how a cancelled transaction is told', () => {
  async function openAttempt() {
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const attempt = await attemptOf(outTradeNo);
    return { user, attempt: { ...attempt, outTradeNo: `${user.orderIds[1]}T1`, orderId: user.orderIds[1] } as Attempt };
  }

  it("a race lost to another transaction on the same items (TransactionConflict) is a lost race on the state, DynamoDB's answer its cause", async () => {
    const { user, attempt } = await openAttempt();
    const order = (await stack.app.store.getOrder(user.orderIds[1]))!;
    const answer = cancelled('None', 'TransactionConflict', 'None', 'None');
    await withDatabaseAnswering('TransactWriteItems', answer, async (store) => {
      const error = await rejection(store.commitAttempt({ attempt, quoted: order, now: new Date().toISOString() }));
      expect(error).toEqual(new WriteConflict('state'));
      expect((error as Error).cause).toBe(answer);
    });
  });

  it("a transaction cancelled for another reason (throttled) is no lost race: the caller gets DynamoDB's answer itself", async () => {
    const { user, attempt } = await openAttempt();
    const order = (await stack.app.store.getOrder(user.orderIds[1]))!;
    const answer = cancelled('None', 'ThrottlingError', 'None', 'None');
    await withDatabaseAnswering('TransactWriteItems', answer, async (store) => {
      expect(await rejection(store.commitAttempt({ attempt, quoted: order, now: new Date().toISOString() }))).toBe(answer);
    });
  });

  it("a revoke cancelled for another reason than its condition (throttled) is no 'nothing to revoke': the caller gets DynamoDB's answer, the session stays", async () => {
    const token = `throttled-revoke-${'x'.repeat(20)}`;
    await stack.app.store.putSession(token, 9_300, '2099-01-01T00:00:00.000Z');
    const answer = cancelled('ThrottlingError');
    await withDatabaseAnswering('TransactWriteItems', answer, async (store) => {
      expect(await rejection(store.deleteSession(token))).toBe(answer);
    });
    expect(await stack.app.store.findSession(token)).toBeDefined();
    expect(await stack.app.store.deleteSession(token)).toBe(true);
  });

  it("a read cancelled by a transaction on its items is read again (a lost race, DynamoDB's answer its cause); a fault of the database stays itself", async () => {
    const user = await givenUser(stack, 0);
    const answer = cancelled('None', 'TransactionConflict', 'None');
    await withDatabaseAnswering('TransactGetItems', answer, async (store) => {
      const error = await rejection(store.loadPayContext(user.userId, user.orderId, user.addressId, 'snapshot'));
      expect(error).toEqual(new WriteConflict('state'));
      expect((error as Error).cause).toBe(answer);
    });
    await expect(broken().loadPayContext(user.userId, user.orderId, user.addressId, 'snapshot')).rejects.toMatchObject(notFound);
    await expect(broken().loadPayContext(user.userId, user.orderId, user.addressId, 'latest')).rejects.toMatchObject(notFound);
  });
});

describe('refunds', () => {
  const now = () => new Date().toISOString();

  /** An order paid with WeChat + 800 points, as captureAttempt leaves it. */
  async function paidOrder() {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await stack.app.store.captureAttempt(
      await attemptOf(outTradeNo),
      { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8000, paidAt: now() },
      now(),
    );
    return { user, attempt: await attemptOf(outTradeNo) };
  }

  /** A WeChat attempt superseded by an Alipay one, whose money came anyway: a refund case with its first refund begun. */
  async function givenRefundCase(reason: string) {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    await pay(stack, user, { method: 2 }); // supersedes it: the WeChat money that comes anyway is a refund case
    const superseded = await attemptOf(outTradeNo);
    const refund = newRefund(superseded, 'duplicate', reason, new Date());
    await stack.app.store.markRefundRequired(
      superseded,
      { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8800, paidAt: now() },
      now(),
      refund,
    );
    return { user, outTradeNo, refund };
  }

  it('begins one refund of an attempt at a time: the same one again, or another while it is pending, changes nothing', async () => {
    const { attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    const before = await state.snapshot();
    await expect(stack.app.store.beginRefund(refund, attempt, now())).rejects.toEqual(new WriteConflict('state'));
    // A second number, from a copy of the attempt that still names the first: its refund is pending, not failed.
    const refunded = await attemptOf(attempt.outTradeNo);
    await expect(stack.app.store.beginRefund(newRefund(refunded, 'order', '又一次', new Date()), refunded, now())).rejects.toEqual(new WriteConflict('state'));
    expect(await state.snapshot()).toEqual(before);
    expect(await state.order(attempt.orderId)).toMatchObject({ status: 'refunding', refund: { out_refund_no: refund.outRefundNo, status: 'pending' } });
  });

  it('gives the points back once: a second success, or a failure after it, changes nothing', async () => {
    const { user, attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    await stack.app.store.completeRefund(refund, now(), now());
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect((await state.ledger(user.userId)).map((e) => e.kind).sort()).toEqual(['capture', 'hold', 'refund']);
    const before = await state.snapshot();
    await expect(stack.app.store.completeRefund(refund, now(), now())).rejects.toEqual(new WriteConflict('state'));
    await expect(stack.app.store.failRefund(refund, 'CLOSED', now())).rejects.toEqual(new WriteConflict('state'));
    expect(await stack.app.store.deferRefund(refund, { nextCheckAt: now(), accepted: true }, now())).toBe(false);
    expect(await state.snapshot()).toEqual(before);
    expect(await state.order(attempt.orderId)).toMatchObject({ status: 'refunded', refund: { status: 'succeeded' } });
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'refunded', refund_no: refund.outRefundNo });
  });

  it('after a final failure, the order is paid again and a refund with the next number may follow', async () => {
    const { attempt } = await paidOrder();
    const first = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(first, attempt, now());
    await stack.app.store.failRefund(first, 'ABNORMAL', now());
    expect(await state.order(attempt.orderId)).toMatchObject({ status: 'paid', refund: { status: 'failed' } });
    // The same number cannot be begun again; the next one can.
    await expect(stack.app.store.beginRefund(first, await attemptOf(attempt.outTradeNo), now())).rejects.toEqual(new WriteConflict('state'));
    const again = await attemptOf(attempt.outTradeNo);
    const second = newRefund(again, 'order', '再次退款', new Date());
    expect(second.outRefundNo).toBe(`${attempt.outTradeNo}R2`);
    await stack.app.store.beginRefund(second, again, now());
    expect(await state.order(attempt.orderId)).toMatchObject({ status: 'refunding', refund: { out_refund_no: second.outRefundNo, status: 'pending' } });
    await stack.app.store.completeRefund(second, now(), now());
  });

  it('counts a follow-up once: a deferral computed from a stale copy changes nothing', async () => {
    const { attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(await stack.app.store.deferRefund(refund, { nextCheckAt: later, accepted: true }, now())).toBe(true);
    const before = await state.snapshot();
    expect(await stack.app.store.deferRefund(refund, { nextCheckAt: later, accepted: false, lastError: 'timeout' }, now())).toBe(false);
    expect(await state.snapshot()).toEqual(before);
    expect(await stack.app.store.getRefund(refund.outRefundNo)).toMatchObject({ checks: 1, accepted: true, nextCheckAt: later });
    expect(await stack.app.store.findDueRefunds(now(), 100)).not.toContainEqual(expect.objectContaining({ outRefundNo: refund.outRefundNo }));
    expect(await stack.app.store.findDueRefunds(later, 100)).toContainEqual(expect.objectContaining({ outRefundNo: refund.outRefundNo }));
    await stack.app.store.completeRefund((await stack.app.store.getRefund(refund.outRefundNo))!, now(), now());
  });

  it('for a refund case, no order guards it: the previous refund must have failed before another is begun', async () => {
    const { user, outTradeNo, refund: first } = await givenRefundCase('重复支付');
    const refundCase = await attemptOf(outTradeNo);
    expect(refundCase).toMatchObject({ status: 'refund_required', refundNo: first.outRefundNo });
    const before = await state.snapshot();
    await expect(stack.app.store.beginRefund(newRefund(refundCase, 'duplicate', '再次退款', new Date()), refundCase, now())).rejects.toEqual(
      new WriteConflict('state'),
    );
    expect(await state.snapshot()).toEqual(before);
    await stack.app.store.failRefund(first, 'CLOSED', now());
    const second = newRefund(refundCase, 'duplicate', '再次退款', new Date());
    await stack.app.store.beginRefund(second, refundCase, now());
    await stack.app.store.completeRefund(second, now(), now());
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refunded', refund_no: second.outRefundNo });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paying' }); // still paying with the newer attempt
  });

  it("tells the shop when an order's refund failed (order.refund_failed, with the reason), not when a refund case's did", async () => {
    const failedEvents = async (outRefundNo: string) =>
      (await state.snapshot()).filter((i) => i.entity === ENTITY.event && i.type === 'order.refund_failed' && String(i.body).includes(outRefundNo));
    const { attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    await stack.app.store.failRefund(refund, 'ABNORMAL', now());
    const [event] = await failedEvents(refund.outRefundNo);
    expect(JSON.parse(String(event?.body))).toMatchObject({ type: 'order.refund_failed', data: { out_refund_no: refund.outRefundNo, reason: 'ABNORMAL' } });

    const { refund: caseRefund } = await givenRefundCase('重复支付');
    await stack.app.store.failRefund(caseRefund, 'ABNORMAL', now());
    expect(await failedEvents(caseRefund.outRefundNo)).toEqual([]);
  });

  describe('reopenAbnormalRefund (the migration of refunds recorded failed as ABNORMAL)', () => {
    it("makes an order's refund pending and ABNORMAL again, due now, its order refunding; a second time changes nothing", async () => {
      const { user, attempt } = await paidOrder();
      const refund = newRefund(attempt, 'order', '用户取消', new Date());
      await stack.app.store.beginRefund(refund, attempt, now());
      await stack.app.store.failRefund(refund, 'ABNORMAL', now());
      const at = now();
      expect(await stack.app.store.reopenAbnormalRefund(refund, at)).toBe(true);
      expect(await state.item(keys.refund(refund.outRefundNo))).toMatchObject({
        status: 'pending',
        last_error: 'ABNORMAL',
        accepted: true,
        next_check_at: at,
        gsi1pk: 'REFUND',
      });
      expect(await state.item(keys.refund(refund.outRefundNo))).not.toHaveProperty('failure_reason');
      expect(await stack.app.store.findDueRefunds(at, 1000)).toContainEqual(expect.objectContaining({ outRefundNo: refund.outRefundNo }));
      expect(await state.order(user.orderId)).toMatchObject({ status: 'refunding', refund: { out_refund_no: refund.outRefundNo, status: 'pending' } });
      const before = await state.snapshot();
      expect(await stack.app.store.reopenAbnormalRefund(refund, now())).toBe(false);
      expect(await state.snapshot()).toEqual(before);
    });

    it('a fault of the database is no lost race: reopening, marking reopened or noting a case handled on a table that is not there fails as itself', async () => {
      const { attempt } = await paidOrder();
      const refund = newRefund(attempt, 'order', '用户取消', new Date());
      await expect(broken().reopenAbnormalRefund(refund, now())).rejects.toMatchObject(notFound);
      await expect(broken().markReopened(refund.outRefundNo, now())).rejects.toMatchObject(notFound);
      await expect(broken().markHandled({ outRefundNo: refund.outRefundNo }, '已线下退款', now())).rejects.toMatchObject(notFound);
    });

    it('marks reopened only a pending refund not marked yet', async () => {
      const { attempt } = await paidOrder();
      const refund = newRefund(attempt, 'order', '用户取消', new Date());
      await stack.app.store.beginRefund(refund, attempt, now());
      expect(await stack.app.store.markReopened(refund.outRefundNo, now())).toBe(true);
      const marked = await state.item(keys.refund(refund.outRefundNo));
      expect(marked).toMatchObject({ status: 'pending', reopened_at: expect.any(String) });
      expect(await stack.app.store.markReopened(refund.outRefundNo, now())).toBe(false);
      expect(await state.item(keys.refund(refund.outRefundNo))).toEqual(marked);
      expect(await stack.app.store.markReopened(`${refund.outRefundNo}-none`, now())).toBe(false);
    });

    it('reopens a refund case refund without touching any order; its attempt stays a refund case', async () => {
      const { outTradeNo, refund } = await givenRefundCase('重复支付');
      await stack.app.store.failRefund(refund, 'ABNORMAL', now());
      expect(await stack.app.store.reopenAbnormalRefund(refund, now())).toBe(true);
      expect(await state.item(keys.refund(refund.outRefundNo))).toMatchObject({ status: 'pending', last_error: 'ABNORMAL' });
      expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refund_required', refund_no: refund.outRefundNo });
    });

    it.each([
      ['failed for another reason', async (refund: Refund) => stack.app.store.failRefund(refund, 'CLOSED', now())],
      [
        'a person noted as handled (paid back outside the gateways)',
        async (refund: Refund) => {
          await stack.app.store.failRefund(refund, 'ABNORMAL', now());
          expect(await stack.app.store.markHandled({ outRefundNo: refund.outRefundNo }, '已线下退款', now())).toBe(true);
        },
      ],
      [
        'followed by a new refund of the payment',
        async (refund: Refund, attempt: Attempt) => {
          await stack.app.store.failRefund(refund, 'ABNORMAL', now());
          const again = await attemptOf(attempt.outTradeNo);
          await stack.app.store.beginRefund(newRefund(again, 'order', '再次退款', new Date()), again, now());
        },
      ],
      [
        'whose order is no longer paid by its attempt',
        async (refund: Refund) => {
          await stack.app.store.failRefund(refund, 'ABNORMAL', now());
          await stack.db.send(
            new UpdateCommand({
              TableName: TABLE,
              Key: keys.order(refund.orderId),
              UpdateExpression: 'SET paid_attempt = :other',
              ExpressionAttributeValues: { ':other': 'another' },
            }),
          );
        },
      ],
    ])('leaves alone a refund %s', async (_case, given) => {
      const { attempt } = await paidOrder();
      const refund = newRefund(attempt, 'order', '用户取消', new Date());
      await stack.app.store.beginRefund(refund, attempt, now());
      await given(refund, attempt);
      const before = await state.snapshot();
      expect(await stack.app.store.reopenAbnormalRefund(refund, now())).toBe(false);
      expect(await state.snapshot()).toEqual(before);
      await stack.db.send(
        new UpdateCommand({
          TableName: TABLE,
          Key: keys.order(refund.orderId),
          UpdateExpression: 'SET paid_attempt = :own',
          ExpressionAttributeValues: { ':own': attempt.outTradeNo },
        }),
      );
    });
  });

  it("keeps a follow-up's last error while the gateway keeps failing, and drops it once an answer comes", async () => {
    const { attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    expect(await stack.app.store.deferRefund(refund, { nextCheckAt: now(), accepted: false, lastError: 'ECONNRESET' }, now())).toBe(true);
    const failing = (await stack.app.store.getRefund(refund.outRefundNo))!;
    expect(failing).toMatchObject({ checks: refund.checks + 1, lastError: 'ECONNRESET' });
    expect(await stack.app.store.deferRefund(failing, { nextCheckAt: now(), accepted: true }, now())).toBe(true);
    const answered = (await stack.app.store.getRefund(refund.outRefundNo))!;
    expect(answered).toMatchObject({ checks: refund.checks + 2, accepted: true });
    expect(answered.lastError).toBeUndefined();
    await stack.app.store.completeRefund(answered, now(), now());
  });

  it('never takes the spent points below zero: a refund of more points than the account has spent (a table edited by hand) changes nothing', async () => {
    const { user, attempt } = await paidOrder();
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    const setSpent = (spent: number) => setAccountBucket(user.userId, 'integral_spent', spent);
    await setSpent(700);
    const before = await state.snapshot();
    await expect(stack.app.store.completeRefund(refund, now(), now())).rejects.toBeInstanceOf(WriteConflict);
    expect(await state.snapshot()).toEqual(before);
    await setSpent(800);
    await stack.app.store.completeRefund(refund, now(), now());
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
  });

  it('writes no points entry for a refund of cash alone', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    await stack.app.store.captureAttempt(
      await attemptOf(outTradeNo),
      { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8800, paidAt: now() },
      now(),
    );
    const attempt = await attemptOf(outTradeNo);
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    await stack.app.store.completeRefund(refund, now(), now());
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(await state.ledger(user.userId)).toEqual([]);
  });

  it('refunds points only at once, in one write: order and attempt refunded, points back', async () => {
    const user = await givenUser(stack, 10_000);
    const { outTradeNo } = await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    const attempt = await attemptOf(outTradeNo);
    await stack.app.store.beginRefund(newRefund(attempt, 'order', '用户取消', new Date()), attempt, now());
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded', refund: { status: 'succeeded', points: 8800, cash_fen: 0 } });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refunded' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 10_000, integral_spent: 0 });
  });
});

describe("the shop's order writes", () => {
  const now = () => new Date().toISOString();
  const fieldsOf = ({ orderId, userId, goodsName, goodsFen, freeShipping, freightOptions }: Order): OrderFields => ({
    orderId,
    userId,
    goodsName,
    goodsFen,
    freeShipping,
    freightOptions,
  });
  const lostRace = expect.objectContaining({
    name: 'WriteConflict',
    part: 'state',
    cause: expect.objectContaining({ name: 'ConditionalCheckFailedException' }),
  });

  it('write only from the state they expect: otherwise a WriteConflict on the state and no change; a database fault stays itself', async () => {
    const user = await givenUser(stack, 0, ['88.00', '88.00']);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const paying = fieldsOf((await stack.app.store.getOrder(user.orderIds[0])) as Order);
    const unpaid = fieldsOf((await stack.app.store.getOrder(user.orderIds[1])) as Order);
    const before = await state.snapshot();
    const store = stack.app.store;
    // A new order is a transaction of one item (a lost answer sent again is done, not refused): its condition cancels it.
    await expect(store.putUnpaidOrder(unpaid, 'new', now())).rejects.toEqual(
      expect.objectContaining({ name: 'WriteConflict', part: 'state', cause: expect.objectContaining({ name: 'TransactionCanceledException' }) }),
    );
    await expect(store.putUnpaidOrder({ ...paying, goodsName: '改名' }, 'unpaid', now())).rejects.toEqual(lostRace);
    await expect(store.putUnpaidOrder({ ...unpaid, userId: user.userId + 1 }, 'unpaid', now())).rejects.toEqual(lostRace);
    await expect(store.renamePayingOrder({ ...paying, goodsName: '改名' }, `${outTradeNo}-other`, now())).rejects.toEqual(lostRace);
    await expect(store.renamePayingOrder({ ...paying, userId: user.userId + 1 }, outTradeNo, now())).rejects.toEqual(lostRace);
    await expect(store.renamePayingOrder({ ...unpaid, goodsName: '改名' }, outTradeNo, now())).rejects.toEqual(lostRace);
    expect(await state.snapshot()).toEqual(before);
    await expect(broken().putUnpaidOrder(unpaid, 'unpaid', now())).rejects.toMatchObject(notFound);
    await expect(broken().renamePayingOrder(paying, outTradeNo, now())).rejects.toMatchObject(notFound);

    // From the state they expect, the same writes go through.
    await store.putUnpaidOrder({ ...unpaid, goodsName: '新品名' }, 'unpaid', now());
    await store.renamePayingOrder({ ...paying, goodsName: '新品名' }, outTradeNo, now());
    expect(await state.order(user.orderIds[1])).toMatchObject({ status: 'unpaid', goods_name: '新品名' });
    expect(await state.order(user.orderIds[0])).toMatchObject({ status: 'paying', goods_name: '新品名', open_attempt: { out_trade_no: outTradeNo } });
  });

  it('a points entry without its reason (one edited by hand) reads with an empty reason, never undefined', async () => {
    const user = await givenUser(stack, 0);
    await stack.app.store.moveShopPoints({ userId: user.userId, entryId: 'legacy-1', kind: 'credit', points: 50, reason: '签到' }, now());
    await stack.db.send(new UpdateCommand({ TableName: TABLE, Key: keys.shopLedger(user.userId, 'legacy-1'), UpdateExpression: 'REMOVE reason' }));
    expect(await stack.app.store.getShopPointsMove(user.userId, 'legacy-1')).toEqual({
      userId: user.userId,
      entryId: 'legacy-1',
      kind: 'credit',
      points: 50,
      reason: '',
    });
  });
});

describe('recordDelivery', () => {
  const now = () => new Date().toISOString();
  const delivered = {
    attempt: { at: '2026-11-30T01:00:00.000Z', results: { webhook: 'ok' } },
    deliveredTo: ['webhook' as const],
    status: 'delivered' as const,
  };

  async function paidEvent(): Promise<OutboxEvent> {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const payment = { channel: 'wechat' as const, outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8800, paidAt: now() };
    await stack.app.store.captureAttempt(await attemptOf(outTradeNo), payment, now());
    return (await stack.app.store.getEvent(`evt_order_paid_${outTradeNo}`)) as OutboxEvent;
  }

  it('records one delivery per copy read: a second record from the same copy changes nothing and says so', async () => {
    const event = await paidEvent();
    expect(event).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await stack.app.store.recordDelivery(event, delivered, now())).toBe(true);
    const after = await state.snapshot();
    expect(await stack.app.store.recordDelivery(event, delivered, now())).toBe(false);
    expect(await state.snapshot()).toEqual(after);
    expect(await stack.app.store.getEvent(event.event.id)).toMatchObject({ status: 'delivered', attempts: 1 });
  });

  it('refuses, before writing, a pending record without its next attempt time; a database fault reaches the caller', async () => {
    const event = await paidEvent();
    const before = await state.snapshot();
    const pending = { ...delivered, status: 'pending' as const, deliveredTo: [] };
    await expect(stack.app.store.recordDelivery(event, pending, now())).rejects.toThrow(`pending event ${event.event.id} needs its next attempt time`);
    expect(await state.snapshot()).toEqual(before);
    await expect(broken().recordDelivery(event, delivered, now())).rejects.toMatchObject(notFound);
  });
});
