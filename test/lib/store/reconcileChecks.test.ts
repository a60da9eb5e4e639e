import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Refund } from '../../../lib/domain/model';
import { newRefund } from '../../../lib/domain/refund';
import { refundItem } from '../../../lib/store/items';
import { INDEX_PARTITION, keys, userPartition } from '../../../lib/store/keys';
import { reconcile } from '../../../lib/store/reconcile';
import { writeFixture } from '../../../scripts/local/fixtures';
import { createTables } from '../../../scripts/local/tables';
import { startTestStack, TABLE, type TestStack } from '../../support/stack';
import { type GivenUser, givenUser, pay } from '../../support/world';

/**
 * Each check of reconcile, one condition at a time: every case breaks one invariant by hand (a raw
 * write after a real history) and expects the exact line an operator reads, and next to it the
 * case that must not be flagged. The counts of a whole report (its info lines, a scan of more than
 * one page) are read on a table of their own.
 */
let stack: TestStack;
let db: TestStack['db'];
beforeAll(async () => {
  stack = await startTestStack();
  db = stack.db;
});
afterAll(() => stack.close());

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const now = () => new Date().toISOString();
/** A clock `ms` after the time `iso`. */
const clockAt = (iso: string, ms: number) => () => new Date(Date.parse(iso) + ms);

async function update(key: { pk: string; sk: string }, expression: string, values?: Record<string, unknown>, names?: Record<string, string>) {
  await db.send(
    new UpdateCommand({ TableName: TABLE, Key: key, UpdateExpression: expression, ExpressionAttributeValues: values, ExpressionAttributeNames: names }),
  );
}
const STATUS = { '#s': 'status' };

/** The lines about these subjects (`order 1011`, `attempt …`, `refund …`, `user …`): the file's cases share one database. */
const about = (lines: string[], ...subjects: string[]) => lines.filter((line) => subjects.some((s) => new RegExp(`(^|\\W)${s}\\b`).test(line)));

/** What reconcile says about one user's order, its attempts and refunds (at `clock`, default now). */
async function findings(subjects: string[], clock?: () => Date) {
  const report = await reconcile(db, TABLE, clock);
  return { problems: about(report.problems, ...subjects), needsPerson: about(report.needsPerson, ...subjects), report };
}

/** `user`'s order paid with WeChat + 800 points; its attempt's number. */
async function paidOrder(user: GivenUser) {
  const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await stack.app.store.captureAttempt(
    (await stack.app.store.getAttempt(outTradeNo))!,
    { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8000, paidAt: now() },
    now(),
  );
  return outTradeNo;
}

/** An order paid with WeChat + 800 points, and its refund begun (pending). */
async function refundingOrder() {
  const user = await givenUser(stack, 1000);
  const outTradeNo = await paidOrder(user);
  const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
  const refund = newRefund(attempt, 'order', '用户取消', new Date());
  await stack.app.store.beginRefund(refund, attempt, now());
  const subjects = [`user ${user.userId}`, `order ${user.orderId}`, `attempt ${outTradeNo}`, `refund ${refund.outRefundNo}`];
  return { user, outTradeNo, refund, subjects };
}

async function refundedOrder() {
  const refunding = await refundingOrder();
  await stack.app.store.completeRefund(refunding.refund, now(), now());
  return refunding;
}

describe('points', () => {
  it.each([
    [
      'available',
      'SET integral_available = :m, integral_credited = :m',
      { ':m': -5 },
      (u: number) => [`user ${u}: negative points (available -5, held 0, spent 0)`],
    ],
    [
      'held',
      'ADD integral_held :m, integral_available :p',
      { ':m': -5, ':p': 5 },
      (u: number) => [
        `user ${u}: negative points (available 5, held -5, spent 0)`,
        `user ${u}: held -5 but the ledger says 0`,
        `user ${u}: held -5 but open attempts hold 0`,
      ],
    ],
    [
      'spent',
      'ADD integral_spent :m, integral_available :p',
      { ':m': -5, ':p': 5 },
      (u: number) => [`user ${u}: negative points (available 5, held 0, spent -5)`, `user ${u}: spent -5 but the ledger says 0`],
    ],
  ])('names negative %s points, alone in its bucket', async (_bucket, expression, values, expected) => {
    const { userId } = await givenUser(stack, 0);
    expect((await findings([`user ${userId}`])).problems).toEqual([]);
    await update(keys.account(userId), expression, values);
    expect((await findings([`user ${userId}`])).problems).toEqual(expected(userId));
  });
});

describe('orders', () => {
  const outsideOrder = async (orderId: number) => {
    await stack.seed({ orders: [{ order_id: orderId, user_id: 883_000, goods_name: '旧订单', goods_price: '20.00', free_shipping: true, status: 'paid' }] });
    expect((await findings([`order ${orderId}`])).problems).toEqual([]);
  };

  it('an order marked paid outside paynow but paid by an attempt of ours is a problem', async () => {
    const user = await givenUser(stack, 1000);
    const outTradeNo = await paidOrder(user);
    await update(keys.order(user.orderId), 'SET paid_outside = :yes', { ':yes': true });
    expect((await findings([`order ${user.orderId}`, `attempt ${outTradeNo}`])).problems).toEqual([
      `order ${user.orderId}: marked paid outside paynow, but paid by ${outTradeNo}`,
    ]);
  });

  it('an order marked paid outside paynow that carries a refund is a problem, paid without an attempt of ours', async () => {
    await outsideOrder(883_001);
    await update(keys.order(883_001), 'SET refund = :r', { ':r': { out_refund_no: '883001R1', status: 'failed', cash_fen: 2000, points: 0 } });
    expect((await findings(['order 883001'])).problems).toEqual([
      'order 883001: marked paid outside paynow, but paid',
      'order 883001: paid without a paid attempt',
      'order 883001: its refund 883001R1 is failed on the order, missing itself',
    ]);
  });

  it('an order marked paid outside paynow that is refunding is a problem, without a paid attempt and without its refund', async () => {
    await outsideOrder(883_002);
    await update(keys.order(883_002), 'SET #s = :refunding', { ':refunding': 'refunding' }, STATUS);
    expect((await findings(['order 883002'])).problems).toEqual([
      'order 883002: marked paid outside paynow, but refunding',
      'order 883002: refunding without a paid attempt',
      'order 883002: refunding but its refund is missing',
    ]);
  });

  it('names an order paying with no attempt', async () => {
    const user = await givenUser(stack, 0);
    await update(keys.order(user.orderId), 'SET #s = :paying', { ':paying': 'paying' }, STATUS);
    expect((await findings([`order ${user.orderId}`])).problems).toEqual([`order ${user.orderId}: paying with no attempt, which is missing`]);
  });

  it('names a refunding order whose attempt is no longer paid', async () => {
    const { user, outTradeNo, subjects } = await refundingOrder();
    expect((await findings(subjects)).problems).toEqual([]);
    await update(keys.attempt(outTradeNo), 'SET #s = :expired', { ':expired': 'expired' }, STATUS);
    expect((await findings(subjects)).problems).toEqual([`order ${user.orderId}: refunding by ${outTradeNo}, which is not a paid attempt`]);
  });

  it('names a refunded order whose attempt is gone, and the refund left without its attempt', async () => {
    const { user, outTradeNo, refund, subjects } = await refundedOrder();
    expect((await findings(subjects)).problems).toEqual([]);
    await db.send(new DeleteCommand({ TableName: TABLE, Key: keys.attempt(outTradeNo) }));
    expect((await findings(subjects)).problems).toEqual([
      `order ${user.orderId}: refunded but its attempt ${outTradeNo} is missing`,
      `refund ${refund.outRefundNo}: its attempt ${outTradeNo} is missing`,
    ]);
  });

  it('names a refunding order whose refund says it succeeded', async () => {
    const { user, refund, subjects } = await refundingOrder();
    await update(keys.order(user.orderId), 'SET refund.#s = :succeeded', { ':succeeded': 'succeeded' }, STATUS);
    expect((await findings(subjects)).problems).toEqual([
      `order ${user.orderId}: its refund ${refund.outRefundNo} is succeeded on the order, pending itself`,
      `order ${user.orderId}: refunding but its refund is succeeded`,
    ]);
  });

  it('names a refunded order whose refund says it is still pending', async () => {
    const { user, refund, subjects } = await refundedOrder();
    await update(keys.order(user.orderId), 'SET refund.#s = :pending', { ':pending': 'pending' }, STATUS);
    expect((await findings(subjects)).problems).toEqual([
      `order ${user.orderId}: its refund ${refund.outRefundNo} is pending on the order, succeeded itself`,
      `order ${user.orderId}: refunded but its refund is pending`,
    ]);
  });

  it('names a refund that vanished from under its order and its attempt', async () => {
    const { user, outTradeNo, refund, subjects } = await refundingOrder();
    await db.send(new DeleteCommand({ TableName: TABLE, Key: keys.refund(refund.outRefundNo) }));
    expect((await findings(subjects)).problems).toEqual([
      `order ${user.orderId}: its refund ${refund.outRefundNo} is pending on the order, missing itself`,
      `attempt ${outTradeNo}: its refund ${refund.outRefundNo} is missing`,
    ]);
  });
});

describe('attempts', () => {
  it('names an open attempt whose order is closed', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    await update(keys.order(user.orderId), 'SET #s = :closed', { ':closed': 'closed' }, STATUS);
    expect((await findings([`order ${user.orderId}`, `attempt ${outTradeNo}`])).problems).toEqual([
      `order ${user.orderId}: closed but its attempt ${outTradeNo} is still open`,
      `attempt ${outTradeNo}: open but its order is not paying with it`,
    ]);
  });

  it('names an open attempt its paying order has replaced', async () => {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 });
    const subjects = [`order ${user.orderId}`, `attempt ${first.outTradeNo}`, `attempt ${second.outTradeNo}`];
    expect((await findings(subjects)).problems).toEqual([]);
    await update(keys.attempt(first.outTradeNo), 'SET #s = :open', { ':open': 'open' }, STATUS);
    expect((await findings(subjects)).problems).toEqual([`attempt ${first.outTradeNo}: open but its order is not paying with it`]);
  });

  it('names an open attempt out of the sweeper index, and a paid one still in it', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo: open } = await pay(stack, user, { method: 1 });
    await update(keys.attempt(open), 'REMOVE gsi1pk, gsi1sk');
    const other = await givenUser(stack, 1000);
    const paid = await paidOrder(other);
    await update(keys.attempt(paid), 'SET gsi1pk = :p, gsi1sk = :s', { ':p': INDEX_PARTITION.legacyOpen, ':s': `${now()}#${paid}` });
    const { problems } = await reconcile(db, TABLE);
    expect(about(problems, `attempt ${open}`)).toEqual([`attempt ${open}: open but indexed as nothing`]);
    expect(about(problems, `attempt ${paid}`)).toEqual([`attempt ${paid}: paid but indexed as OPEN`]);
  });

  it('a released attempt still checked 15 minutes past its last look (its checks keep failing) is stuck; one the sweeper let go never is', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
    await stack.app.store.releaseAttempt(attempt, 'expired', now(), true);
    const released = (await stack.app.store.getAttempt(outTradeNo))!;
    // Its last look (expiry + 5 minutes) found a signed payment of another amount: backed off, twice.
    const lastLook = new Date(Date.parse(released.expiresAt) + 5 * MINUTE).toISOString();
    expect(await stack.app.store.rescheduleCheck(released, lastLook, 2)).toBe(true);
    expect((await findings([`attempt ${outTradeNo}`], clockAt(lastLook, 15 * MINUTE))).problems).toEqual([]);
    expect((await findings([`attempt ${outTradeNo}`], clockAt(lastLook, 15 * MINUTE + 1))).problems).toEqual([
      `attempt ${outTradeNo}: expired and still checked 15 minutes after its last look (2 failed checks in a row)`,
    ]);
    await stack.app.store.unwatchAttempt((await stack.app.store.getAttempt(outTradeNo))!);
    expect((await findings([`attempt ${outTradeNo}`], clockAt(lastLook, DAY))).problems).toEqual([]);
  });

  it('an attempt open exactly 15 minutes past its expiry is not yet stuck; a paid one long past it never is', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const { expiresAt } = (await stack.app.store.getAttempt(outTradeNo))!;
    expect((await findings([`attempt ${outTradeNo}`], clockAt(expiresAt, 15 * MINUTE))).problems).toEqual([]);
    expect((await findings([`attempt ${outTradeNo}`], clockAt(expiresAt, 15 * MINUTE + 1))).problems).toEqual([
      `attempt ${outTradeNo}: still open 15 minutes after its expiry`,
    ]);
    const other = await givenUser(stack, 1000);
    const paid = await paidOrder(other);
    const paidExpiry = (await stack.app.store.getAttempt(paid))!.expiresAt;
    expect((await findings([`attempt ${paid}`], clockAt(paidExpiry, 60 * MINUTE))).problems).toEqual([]);
  });

  it("names a paid attempt without the gateway's transaction id", async () => {
    const user = await givenUser(stack, 1000);
    const outTradeNo = await paidOrder(user);
    await update(keys.attempt(outTradeNo), 'REMOVE transaction_id');
    expect((await findings([`attempt ${outTradeNo}`])).problems).toEqual([`attempt ${outTradeNo}: paid without the gateway's transaction id`]);
  });

  it("names a refund case without the gateway's transaction id", async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    await pay(stack, user, { method: 2 });
    const payment = { channel: 'wechat' as const, outTradeNo, transactionId: 'tx', amountFen: 8800, paidAt: now() };
    await stack.app.store.markRefundRequired((await stack.app.store.getAttempt(outTradeNo))!, payment, now());
    expect((await findings([`attempt ${outTradeNo}`])).problems).toEqual([]);
    await update(keys.attempt(outTradeNo), 'REMOVE transaction_id');
    expect((await findings([`attempt ${outTradeNo}`])).problems).toEqual([`attempt ${outTradeNo}: refund_required without the gateway's transaction id`]);
  });

  it('an order paid in points alone has no cash and no transaction id, and is clean', async () => {
    const user = await givenUser(stack, 10_000);
    const { outTradeNo } = await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    expect(await stack.app.store.getAttempt(outTradeNo)).toMatchObject({ status: 'paid', cashFen: 0, transactionId: undefined });
    expect((await findings([`order ${user.orderId}`, `attempt ${outTradeNo}`])).problems).toEqual([]);
  });

  it("a refund is its own attempt's alone: a refunded attempt and another paid one are both clean", async () => {
    const refunded = await refundedOrder();
    const user = await givenUser(stack, 1000);
    const paid = await paidOrder(user);
    expect((await findings([...refunded.subjects, `order ${user.orderId}`, `attempt ${paid}`])).problems).toEqual([]);
  });

  it('names an attempt with two refunds pending', async () => {
    const { outTradeNo, refund, subjects } = await refundingOrder();
    const second: Refund = { ...refund, outRefundNo: `${outTradeNo}R2` };
    await db.send(new PutCommand({ TableName: TABLE, Item: refundItem(second) }));
    expect((await findings([...subjects, `refund ${second.outRefundNo}`])).problems).toEqual([`attempt ${outTradeNo}: more than one refund pending`]);
  });

  it('names a refunded attempt whose refund failed, and lists the failure (without a reason) for a person', async () => {
    const { user, outTradeNo, refund, subjects } = await refundedOrder();
    await update(keys.refund(refund.outRefundNo), 'SET #s = :failed', { ':failed': 'failed' }, STATUS);
    const { problems, needsPerson } = await findings(subjects);
    expect(problems).toEqual([
      `order ${user.orderId}: its refund ${refund.outRefundNo} is succeeded on the order, failed itself`,
      `attempt ${outTradeNo}: refunded, paid 8000 fen, refunded 0 fen, expected to hold 0 fen`,
      `attempt ${outTradeNo}: refunded but its refund ${refund.outRefundNo} did not succeed`,
    ]);
    expect(needsPerson).toEqual([`refund ${refund.outRefundNo} (order ${user.orderId}): failed; README "When a refund failed"`]);
  });
});

describe('refunds', () => {
  it('names a pending refund with no time set for its next follow-up', async () => {
    const { refund, subjects } = await refundingOrder();
    await update(keys.refund(refund.outRefundNo), 'REMOVE next_check_at');
    expect((await findings(subjects)).problems).toEqual([`refund ${refund.outRefundNo}: pending without a next check`]);
  });

  it('a refund pending exactly a day is not overdue; a moment later it is, with its last error', async () => {
    const { user, refund, subjects } = await refundingOrder();
    await stack.app.store.deferRefund(refund, { nextCheckAt: now(), accepted: true, lastError: 'SYSTEMERROR' }, now());
    let found = await findings(subjects, clockAt(refund.createdAt, DAY));
    expect(found.needsPerson).toEqual([]);
    expect(found.report.overdueRefunds.filter((r) => r.outRefundNo === refund.outRefundNo)).toEqual([]);
    found = await findings(subjects, clockAt(refund.createdAt, DAY + 1));
    expect(found.needsPerson).toEqual([`refund ${refund.outRefundNo} (order ${user.orderId}): pending since ${refund.createdAt} (SYSTEMERROR)`]);
    expect(found.report.overdueRefunds.filter((r) => r.outRefundNo === refund.outRefundNo)).toEqual([
      expect.objectContaining({ status: 'pending', reason: 'SYSTEMERROR' }),
    ]);
  });

  it('a refund that succeeded more than a day ago is not overdue', async () => {
    const { refund, subjects } = await refundedOrder();
    const found = await findings(subjects, clockAt(refund.createdAt, 2 * DAY));
    expect(found.needsPerson).toEqual([]);
    expect(found.report.overdueRefunds.filter((r) => r.outRefundNo === refund.outRefundNo)).toEqual([]);
  });
});

describe('a whole report, on a table of its own', () => {
  let tables = 0;
  async function freshTable(): Promise<string> {
    const table = `reconcile-${++tables}`;
    await createTables(stack.dynamo.endpoint, table);
    return table;
  }
  /** Copies these partitions of the shared table into `table`: a real history, alone. */
  async function copy(table: string, partitions: string[]) {
    for (const pk of partitions) {
      const { Items = [] } = await db.send(
        new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk } }),
      );
      for (const item of Items) await db.send(new PutCommand({ TableName: table, Item: item }));
    }
  }
  const partitionsOf = (r: Awaited<ReturnType<typeof refundingOrder>>) => [
    userPartition(r.user.userId),
    keys.order(r.user.orderId).pk,
    keys.attempt(r.outTradeNo).pk,
    keys.refund(r.refund.outRefundNo).pk,
  ];
  const ON_THEIR_WAY = (n: number) => `refunds on their way: ${n} (pending less than a day; the sweeper follows them up)`;

  it('an empty table tells nothing', async () => {
    expect(await reconcile(db, await freshTable())).toEqual({
      problems: [],
      needsPerson: [],
      info: [],
      refunds: [],
      failedRefunds: [],
      abnormalRefunds: [],
      overdueRefunds: [],
      counts: { users: 0, orders: 0, attempts: 0, refunds: 0, ledgerEntries: 0 },
    });
  });

  it('counts the refunds on their way: pending ones less than a day old, not the done ones', async () => {
    const table = await freshTable();
    const [first, second, done] = [await refundingOrder(), await refundingOrder(), await refundedOrder()];
    await copy(table, [...partitionsOf(first), ...partitionsOf(second), ...partitionsOf(done)]);
    let report = await reconcile(db, table);
    expect(report).toMatchObject({ problems: [], needsPerson: [], info: [ON_THEIR_WAY(2)], counts: { refunds: 3 } });
    const twoDaysAgo = new Date(Date.now() - 2 * DAY).toISOString();
    const age = (outRefundNo: string) =>
      db.send(
        new UpdateCommand({
          TableName: table,
          Key: keys.refund(outRefundNo),
          UpdateExpression: 'SET created_at = :t',
          ExpressionAttributeValues: { ':t': twoDaysAgo },
        }),
      );
    await age(first.refund.outRefundNo);
    report = await reconcile(db, table);
    expect(report.info).toEqual([ON_THEIR_WAY(1)]);
    expect(report.needsPerson).toEqual([`refund ${first.refund.outRefundNo} (order ${first.user.orderId}): pending since ${twoDaysAgo}`]);
    await age(second.refund.outRefundNo);
    report = await reconcile(db, table);
    expect(report.info).toEqual([]);
    expect(report.needsPerson).toHaveLength(2);
  });

  it('lists a refund WeChat reports abnormal for a person at once, however young, never also as overdue or on its way', async () => {
    const table = await freshTable();
    const [abnormal, young] = [await refundingOrder(), await refundingOrder()];
    await copy(table, [...partitionsOf(abnormal), ...partitionsOf(young)]);
    const mark = (lastError: string) =>
      db.send(
        new UpdateCommand({
          TableName: table,
          Key: keys.refund(abnormal.refund.outRefundNo),
          UpdateExpression: 'SET last_error = :e',
          ExpressionAttributeValues: { ':e': lastError },
        }),
      );
    await mark('SYSTEMERROR'); // any other error: on its way
    expect(await reconcile(db, table)).toMatchObject({ needsPerson: [], abnormalRefunds: [], info: [ON_THEIR_WAY(2)] });
    await mark('ABNORMAL');
    let report = await reconcile(db, table);
    const line = `refund ${abnormal.refund.outRefundNo} (order ${abnormal.user.orderId}): abnormal at WeChat, the payer's account cannot take it; README "When a refund is abnormal"`;
    expect(report).toMatchObject({ problems: [], needsPerson: [line], info: [ON_THEIR_WAY(1)], overdueRefunds: [] });
    expect(report.abnormalRefunds).toEqual([expect.objectContaining({ outRefundNo: abnormal.refund.outRefundNo, status: 'pending', reason: 'ABNORMAL' })]);
    report = await reconcile(db, table, () => new Date(Date.now() + 2 * DAY));
    expect(report.needsPerson).toEqual([line, expect.stringMatching(new RegExp(`^refund ${young.refund.outRefundNo} .*pending since`))]);
    expect(report.overdueRefunds.map((r) => r.outRefundNo)).toEqual([young.refund.outRefundNo]);
  });

  it('counts in plural from two', async () => {
    const table = await freshTable();
    const order = { user_id: 884_000, goods_name: '旧订单', goods_price: '20.00', free_shipping: true, status: 'paid' as const };
    await writeFixture(db, table, { orders: [{ ...order, order_id: 884_001 }] });
    expect((await reconcile(db, table)).info).toEqual(['imported as paid outside paynow: 1 order']);
    await writeFixture(db, table, { orders: [{ ...order, order_id: 884_002 }] });
    expect((await reconcile(db, table)).info).toEqual(['imported as paid outside paynow: 2 orders']);
  });

  it('reads every page of a table larger than one scan page (1 MB)', async () => {
    const table = await freshTable();
    // Items reconcile does not check, large enough to fill three pages.
    const padding = 'x'.repeat(350_000);
    for (let i = 0; i < 8; i++) await db.send(new PutCommand({ TableName: table, Item: { pk: `FILLER#${i}`, sk: 'FILLER', padding } }));
    const orders = Array.from({ length: 20 }, (_, i) => ({
      order_id: 885_001 + i,
      user_id: 885_000,
      goods_name: '旧订单',
      goods_price: '20.00',
      free_shipping: true,
      status: 'paid' as const,
    }));
    await writeFixture(db, table, { orders });
    const report = await reconcile(db, table);
    expect(report.counts.orders).toBe(20);
    expect(report.info).toEqual(['imported as paid outside paynow: 20 orders']);
  });
});
