import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Attempt } from '../../../lib/domain/model';
import { newRefund } from '../../../lib/domain/refund';
import { ledgerItem, refundItem as refundItemOf } from '../../../lib/store/items';
import { keys } from '../../../lib/store/keys';
import { reconcile } from '../../../lib/store/reconcile';
import { recordingClient } from '../../support/sentRequests';
import { startTestStack, TABLE, type TestStack } from '../../support/stack';
import { givenUser, pay, payDeps } from '../../support/world';

/** reconcile must flag what is wrong: each case breaks one invariant by hand and expects it named. */
let stack: TestStack;
let db: TestStack['db'];
beforeAll(async () => {
  stack = await startTestStack();
  db = stack.db;
});
afterAll(() => stack.close());

async function update(key: { pk: string; sk: string }, expression: string, values: Record<string, unknown> = {}, names?: Record<string, string>) {
  const given = Object.keys(values).length ? values : undefined;
  await db.send(
    new UpdateCommand({ TableName: TABLE, Key: key, UpdateExpression: expression, ExpressionAttributeValues: given, ExpressionAttributeNames: names }),
  );
}

/** The lines of a list that are about this order (the file's cases share one database). */
const about = (lines: string[], orderId: number) => lines.filter((line) => new RegExp(`order ${orderId}\\b`).test(line));

it('scans strongly consistent: a write acknowledged before the run is in what it checks', async () => {
  // dynalite reads consistently whatever is asked; a DynamoDB scan is eventually consistent by default.
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  const { client, sent } = recordingClient(stack.dynamo.endpoint);
  try {
    await reconcile(client, TABLE);
  } finally {
    client.destroy();
  }
  expect(sent.length).toBeGreaterThan(0);
  expect(sent.map((request) => [request.operation, request.input.ConsistentRead])).toEqual(sent.map(() => ['Scan', true]));
});

describe('on a live table, where the sweeper and the app write while reconcile reads', () => {
  /**
   * The table read one item a page (as a big one is read a megabyte a page), and `write` run the moment
   * the first item of `pks` has been read: the others are read after it, as a scan meets a release.
   */
  function scanningInto(pks: string[], write: () => Promise<unknown>): TestStack['db'] {
    let written = false;
    const client = {
      send: async (command: ScanCommand) => {
        const page = await db.send(new ScanCommand({ ...command.input, Limit: 1 }));
        if (!written && page.Items?.some((item) => pks.includes(item.pk as string))) {
          written = true;
          await write();
        }
        return page;
      },
    };
    return client as unknown as TestStack['db'];
  }

  it('a release landing between the reads of the order and its attempt is information, not a problem', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const attempt = (await stack.app.store.getAttempt(outTradeNo)) as Attempt;
    const release = () => stack.app.store.releaseAttempt(attempt, 'expired', new Date().toISOString(), true);
    const report = await reconcile(scanningInto([`ORDER#${user.orderId}`, `ATTEMPT#${outTradeNo}`, `USER#${user.userId}`], release), TABLE);
    expect(report.problems).toEqual([]);
    expect(report.info).toContainEqual(expect.stringMatching(/^seen in one of two scans only, written to while read: .*(order|attempt|user) /));
    expect(await stack.app.store.getOrder(user.orderId)).toMatchObject({ status: 'unpaid' });
  });

  it('a write landing during the second scan only (the first found another problem) is information as well; the one in both is reported', async () => {
    const broken = await givenUser(stack, 1000);
    await pay(stack, broken, { method: 4, points: 800, priceFen: 8000 });
    await update(keys.account(broken.userId), 'ADD integral_available :m', { ':m': -1 });
    const busy = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, busy, { method: 4, points: 800, priceFen: 8000 });
    const attempt = (await stack.app.store.getAttempt(outTradeNo)) as Attempt;
    const release = () => stack.app.store.releaseAttempt(attempt, 'expired', new Date().toISOString(), true);
    let scans = 0;
    let released = false;
    const client = {
      send: async (command: ScanCommand) => {
        if (!command.input.ExclusiveStartKey) scans++;
        const page = await db.send(new ScanCommand({ ...command.input, Limit: 1 }));
        if (
          scans === 2 &&
          !released &&
          page.Items?.some((item) => [`ORDER#${busy.orderId}`, `ATTEMPT#${outTradeNo}`, `USER#${busy.userId}`].includes(item.pk as string))
        ) {
          released = true;
          await release();
        }
        return page;
      },
    } as unknown as TestStack['db'];
    const report = await reconcile(client, TABLE);
    expect(report.problems.filter((p) => /^(user|order|attempt) /.test(p) && p.includes(String(broken.userId)))).toEqual([
      expect.stringMatching(/available .* != credited/),
    ]);
    expect(report.problems.join('\n')).not.toMatch(new RegExp(`order ${busy.orderId}\\b|user ${busy.userId}\\b|attempt ${outTradeNo}\\b`));
    const seenOnce = report.info.find((line) => line.startsWith('seen in one of two scans only'));
    expect(seenOnce).toMatch(new RegExp(`order ${busy.orderId}\\b|user ${busy.userId}\\b|attempt ${outTradeNo}\\b`));
    expect(seenOnce).not.toContain(`user ${broken.userId}`);
    await update(keys.account(broken.userId), 'ADD integral_available :m', { ':m': 1 });
  });

  it('a broken invariant is reported although the same user was written to during the first scan', async () => {
    const user = await givenUser(stack, 1000, ['88.00', '20.00']);
    await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await update(keys.account(user.userId), 'ADD integral_available :m', { ':m': -1 });
    // The user pays their second order while the first scan reads them: the numbers move, the fault stays.
    const paySecond = () => pay(stack, { ...user, orderId: user.orderIds[1] }, { method: 4, points: 100, priceFen: 1900 });
    const report = await reconcile(scanningInto([`USER#${user.userId}`], paySecond), TABLE);
    expect(report.problems.filter((p) => p.startsWith(`user ${user.userId}:`))).toEqual([expect.stringMatching(/available .* != credited/)]);
    await update(keys.account(user.userId), 'ADD integral_available :m', { ':m': 1 });
  });
});

it('a consistent history is clean', async () => {
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  const report = await stack.reconcile();
  expect(report).toMatchObject({ problems: [], refunds: [] });
  expect(report.info.filter((line) => line.startsWith('repaid outside'))).toEqual([]); // none was
});

it.each([
  ['a point that vanished', (u: { userId: number }) => update(keys.account(u.userId), 'ADD integral_available :m', { ':m': -1 }), /available .* != credited/],
  [
    'a hold no open attempt explains',
    (u: { userId: number }) => update(keys.account(u.userId), 'ADD integral_held :p, integral_available :m', { ':p': 5, ':m': -5 }),
    /held .* open attempts hold/,
  ],
  [
    'points spent off the ledger',
    (u: { userId: number }) => update(keys.account(u.userId), 'ADD integral_spent :p, integral_available :m', { ':p': 5, ':m': -5 }),
    /spent .* the ledger says/,
  ],
])('flags %s', async (_title, corrupt, expected) => {
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await corrupt(user);
  const { problems } = await stack.reconcile();
  expect(problems.some((p) => expected.test(p) && p.includes(`user ${user.userId}`))).toBe(true);
  await stack.seed({ users: [{ user_id: user.userId, integral: 0, tokens: [] }] }); // repair for the next case
});

it('flags a paid attempt its order does not record (a lost payment), and a paying order without its attempt', async () => {
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  await update(keys.attempt(attempt.outTradeNo), 'SET #s = :paid REMOVE gsi1pk, gsi1sk', { ':paid': 'paid' }, { '#s': 'status' });
  const { problems } = await stack.reconcile();
  expect(problems).toContain(`attempt ${attempt.outTradeNo}: paid but its order is not paid by it`);
  expect(problems).toContain(`order ${user.orderId}: paying with ${attempt.outTradeNo}, which is paid`);
  await stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
});

it('flags a paid order whose paid attempt is not paid', async () => {
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  await stack.app.store.captureAttempt(
    (await stack.app.store.getAttempt(attempt.outTradeNo))!,
    { channel: 'wechat', outTradeNo: attempt.outTradeNo, transactionId: 'tx', amountFen: 8800, paidAt: 'x' },
    new Date().toISOString(),
  );
  await update(keys.attempt(attempt.outTradeNo), 'SET #s = :expired', { ':expired': 'expired' }, { '#s': 'status' });
  const { problems } = await stack.reconcile();
  expect(problems).toContain(`order ${user.orderId}: paid by ${attempt.outTradeNo}, which is not a paid attempt`);
  await stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
});

it('flags held points the ledger does not account for, even when the open attempts do', async () => {
  const user = await givenUser(stack, 1000);
  const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await db.send(new DeleteCommand({ TableName: TABLE, Key: keys.ledger(user.userId, attempt.outTradeNo, 'hold') }));
  const { problems } = await stack.reconcile();
  expect(problems).toEqual([`user ${user.userId}: held 800 but the ledger says 0`]);
  await stack.seed({ users: [{ user_id: user.userId, integral: 0, tokens: [] }] });
});

it('lists refund cases without calling them problems', async () => {
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  await pay(stack, user, { method: 2 });
  await stack.app.store.markRefundRequired(
    (await stack.app.store.getAttempt(attempt.outTradeNo))!,
    { channel: 'wechat', outTradeNo: attempt.outTradeNo, transactionId: 'tx', amountFen: 8800, paidAt: 'x' },
    new Date().toISOString(),
  );
  const report = await stack.reconcile();
  expect(report.problems).toEqual([]);
  expect(report.refunds).toEqual([expect.objectContaining({ outTradeNo: attempt.outTradeNo, cashFen: 8800, transactionId: 'tx' })]);
});

it('an order the shop closed while it was paying is not flagged once the sweeper has released its attempt', async () => {
  const { DEFAULT_SWEEP, sweep } = await import('../../../lib/pay/sweep');
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await update(keys.order(user.orderId), 'SET #s = :closed', { ':closed': 'closed' }, { '#s': 'status' });
  expect((await stack.reconcile()).problems).toContain(
    `order ${user.orderId}: closed but its attempt ${(await stack.app.store.getOrder(user.orderId))?.openAttempt?.outTradeNo} is still open`,
  );
  await sweep({ store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(Date.now() + 31 * 60_000) }, DEFAULT_SWEEP);
  expect((await stack.reconcile()).problems).toEqual([]);
  expect(await stack.app.store.getOrder(user.orderId)).toMatchObject({ status: 'closed' });
});

it('flags an attempt still open long after its expiry (a payment that did not match, left for a person)', async () => {
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  const expired = new Date(Date.now() - 20 * 60_000).toISOString();
  await update(keys.attempt(attempt.outTradeNo), 'SET expires_at = :e', { ':e': expired });
  expect((await stack.reconcile()).problems).toContain(`attempt ${attempt.outTradeNo}: still open 20 minutes after its expiry`);
  await update(keys.attempt(attempt.outTradeNo), 'SET expires_at = :e', { ':e': new Date(Date.now() + 20 * 60_000).toISOString() });
});

it('an order imported as paid outside paynow is information; paid without an attempt and unmarked, it is still a problem', async () => {
  const order = { order_id: 880_001, user_id: 880_000, goods_name: '旧订单', goods_price: '20.00', free_shipping: true };
  await stack.seed({ orders: [{ ...order, status: 'paid' }] });
  try {
    let report = await stack.reconcile();
    expect(report.problems).toEqual([]);
    expect(report.info).toContain('imported as paid outside paynow: 1 order');
    await update(keys.order(order.order_id), 'REMOVE paid_outside');
    report = await stack.reconcile();
    expect(report.problems).toEqual(['order 880001: paid without a paid attempt, and not marked as paid outside paynow']);
    expect(report.info.join()).not.toContain('paid outside paynow');
    await update(keys.order(order.order_id), 'SET paid_outside = :yes, #s = :refunded', { ':yes': true, ':refunded': 'refunded' }, { '#s': 'status' });
    expect((await stack.reconcile()).problems).toContain('order 880001: marked paid outside paynow, but refunded');
  } finally {
    await stack.seed({ orders: [order] });
  }
});

it('a user without a points account pays in cash, creates no account, and is still checked', async () => {
  const userId = 881_000;
  await stack.seed({
    addresses: [{ address_id: 881_001, user_id: userId, name: '张三', phone: '13800000000', province: 'p', city: 'c', district: 'd', detail: 'x' }],
    orders: [{ order_id: 881_002, user_id: userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
  try {
    const input = { orderId: 881_002, addressId: 881_001, method: 1, priceFen: 8800, points: 0, freightMode: 1, freightKey: 0 } as const;
    const { payOrder } = await import('../../../lib/pay/payOrder');
    await expect(payOrder(payDeps(stack), userId, { ...input, method: 4, priceFen: 8700, points: 100 })).rejects.toMatchObject({ code: 'INTEGRAL_INVALID' });
    const { outTradeNo } = await payOrder(payDeps(stack), userId, input);
    expect(await stack.app.store.getAccount(userId)).toBeUndefined();
    let report = await stack.reconcile();
    expect(report.problems).toEqual([]);
    expect(report.info).toContain('users without a points account: 1 user (no points to hold or spend; they pay in cash)');
    // Points moved for a user with no account (a deleted account, a hand-made entry) are seen.
    const hold = ledgerItem({ userId, orderId: 881_002, outTradeNo, kind: 'hold', points: 800 }, new Date().toISOString());
    await db.send(new PutCommand({ TableName: TABLE, Item: hold }));
    report = await stack.reconcile();
    expect(report.problems).toEqual([`user ${userId} (no points account): held 0 but the ledger says 800`]);
    await db.send(new DeleteCommand({ TableName: TABLE, Key: keys.attempt(outTradeNo) })); // its ledger alone still shows the user
    expect((await stack.reconcile()).problems).toContain(`user ${userId} (no points account): held 0 but the ledger says 800`);
  } finally {
    await stack.seed({ users: [{ user_id: userId, integral: 0, tokens: [] }] }); // forgets the attempt and the ledger
  }
  expect((await stack.reconcile()).info.join()).not.toContain('without a points account');
});

it('a failed refund and a second payment a person noted as handled are no longer work: counted as information', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  const payment = { channel: 'wechat' as const, outTradeNo, transactionId: 'tx-1', amountFen: 8800, paidAt: new Date().toISOString() };
  const now = () => new Date().toISOString();
  await stack.app.store.captureAttempt((await stack.app.store.getAttempt(outTradeNo))!, payment, now());
  await stack.app.store.recordPaymentConflict((await stack.app.store.getAttempt(outTradeNo))!, { ...payment, transactionId: 'tx-2' }, now());
  const paid = (await stack.app.store.getAttempt(outTradeNo))!;
  const refund = newRefund(paid, 'order', '用户取消', new Date());
  await stack.app.store.beginRefund(refund, paid, now());
  await stack.app.store.failRefund(refund, 'WINDOW_CLOSED 超过退款期限', now());
  const handledBefore = (await stack.reconcile()).info.find((line) => line.startsWith('handled by a person'));
  expect(about((await stack.reconcile()).needsPerson, user.orderId)).toHaveLength(2);

  // A pending refund, or a second payment that was never kept, is no case to note.
  expect(await stack.app.store.markHandled({ outRefundNo: `${outTradeNo}R9` }, '已线下退款', now())).toBe(false);
  expect(await stack.app.store.markHandled({ outTradeNo, transactionId: 'tx-3' }, '已在商户平台退款', now())).toBe(false);
  expect(await stack.app.store.markHandled({ outRefundNo: refund.outRefundNo }, '已线下退款', now())).toBe(true);
  expect(await stack.app.store.markHandled({ outTradeNo, transactionId: 'tx-2' }, '已在商户平台退款', now())).toBe(true);
  const report = await stack.reconcile();
  expect(about(report.needsPerson, user.orderId)).toEqual([]);
  expect(report.failedRefunds.map((r) => r.outRefundNo)).not.toContain(refund.outRefundNo);
  expect(report.problems).toEqual([]);
  const count = (line?: string) => Number(line?.match(/^handled by a person: (\d+)/)?.[1] ?? 0);
  expect(count(report.info.find((line) => line.startsWith('handled by a person')))).toBe(count(handledBefore) + 2);
  expect((await db.send(new GetCommand({ TableName: TABLE, Key: keys.refund(refund.outRefundNo) }))).Item).toMatchObject({
    handled_note: '已线下退款',
    handled_at: expect.any(String),
  });
  await stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
});

it('a second payment of a paid attempt, kept for a person, needs a person; re-seeding its user forgets it', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  const payment = { channel: 'wechat' as const, outTradeNo, transactionId: 'tx-1', amountFen: 8800, paidAt: 'x' };
  await stack.app.store.captureAttempt((await stack.app.store.getAttempt(outTradeNo))!, payment, new Date().toISOString());
  await stack.app.store.recordPaymentConflict((await stack.app.store.getAttempt(outTradeNo))!, { ...payment, transactionId: 'tx-2' }, new Date().toISOString());
  const report = await stack.reconcile();
  expect(report.problems).toEqual([]);
  expect(about(report.needsPerson, user.orderId)).toEqual([
    `attempt ${outTradeNo} (order ${user.orderId}): paid again under wechat transaction tx-2, 88.00 yuan, besides tx-1; see PaymentConflict in README "Logs, metrics and alarms"`,
  ]);
  await stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
  expect(about((await stack.reconcile()).needsPerson, user.orderId)).toEqual([]);
});

describe('refunds', () => {
  const now = () => new Date().toISOString();

  /** An order paid with WeChat + 800 points, and its refund begun (pending). */
  async function refundingOrder() {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await stack.app.store.captureAttempt(
      (await stack.app.store.getAttempt(outTradeNo))!,
      { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8000, paidAt: now() },
      now(),
    );
    const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
    const refund = newRefund(attempt, 'order', '用户取消', new Date());
    await stack.app.store.beginRefund(refund, attempt, now());
    return { user, outTradeNo, refund };
  }
  const reseed = (user: { userId: number; orderId: number }) =>
    stack.seed({
      users: [{ user_id: user.userId, integral: 0, tokens: [] }],
      orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
    });

  it('a refund on its way, and one done, are clean', async () => {
    const { user, refund } = await refundingOrder();
    expect((await stack.reconcile()).problems).toEqual([]);
    await stack.app.store.completeRefund(refund, now(), now());
    expect((await stack.reconcile()).problems).toEqual([]);
    await reseed(user);
  });

  it('flags a refunded order whose attempt still holds the money, and points back off the ledger', async () => {
    const { user, outTradeNo, refund } = await refundingOrder();
    await update(
      keys.order(user.orderId),
      'SET #s = :refunded, refund.#s = :succeeded',
      { ':refunded': 'refunded', ':succeeded': 'succeeded' },
      { '#s': 'status' },
    );
    await update(keys.account(user.userId), 'ADD integral_spent :m, integral_available :p', { ':m': -800, ':p': 800 });
    const { problems } = await stack.reconcile();
    expect(problems).toContain(`order ${user.orderId}: refunded but its attempt ${outTradeNo} is paid`);
    expect(problems).toContain(`order ${user.orderId}: its refund ${refund.outRefundNo} is succeeded on the order, pending itself`);
    expect(problems).toContain(`user ${user.userId}: spent 0 but the ledger says 800`);
    await reseed(user);
  });

  it('flags money refunded that the attempt still claims to hold, and an attempt refunded twice', async () => {
    const { user, outTradeNo, refund } = await refundingOrder();
    await update(keys.refund(refund.outRefundNo), 'SET #s = :succeeded REMOVE gsi1pk, gsi1sk', { ':succeeded': 'succeeded' }, { '#s': 'status' });
    let { problems } = await stack.reconcile();
    expect(problems).toContain(`attempt ${outTradeNo}: paid, paid 8000 fen, refunded 8000 fen, expected to hold 8000 fen`);
    const second = { ...refundItemOf(refund), ...keys.refund(`${outTradeNo}R2`), out_refund_no: `${outTradeNo}R2`, status: 'succeeded' };
    await db.send(new PutCommand({ TableName: TABLE, Item: second }));
    ({ problems } = await stack.reconcile());
    expect(problems).toContain(`attempt ${outTradeNo}: refunded 2 times`);
    await db.send(new DeleteCommand({ TableName: TABLE, Key: keys.refund(`${outTradeNo}R2`) }));
    await reseed(user);
  });

  it('flags a pending refund the sweeper cannot see, and a final one it would keep following', async () => {
    const { user, refund } = await refundingOrder();
    await update(keys.refund(refund.outRefundNo), 'REMOVE gsi1pk');
    expect((await stack.reconcile()).problems).toContain(`refund ${refund.outRefundNo}: pending but indexed as nothing`);
    await update(keys.refund(refund.outRefundNo), 'SET gsi1pk = :p', { ':p': 'REFUND' });
    await stack.app.store.failRefund(refund, 'CLOSED', now());
    await update(keys.refund(refund.outRefundNo), 'SET gsi1pk = :p', { ':p': 'REFUND' });
    expect((await stack.reconcile()).problems).toContain(`refund ${refund.outRefundNo}: failed but indexed as REFUND`);
    await reseed(user);
  });

  it('lists a failed refund until a new one follows it, and one pending for more than a day', async () => {
    const { user, outTradeNo, refund } = await refundingOrder();
    const dayLater = () => new Date(Date.now() + 25 * 60 * 60_000);
    expect((await reconcile(db, TABLE, dayLater)).overdueRefunds).toEqual([
      expect.objectContaining({ outRefundNo: refund.outRefundNo, orderId: user.orderId, cashFen: 8000, points: 800 }),
    ]);
    expect((await stack.reconcile()).overdueRefunds).toEqual([]);
    await stack.app.store.failRefund(refund, 'ABNORMAL', now());
    expect((await stack.reconcile()).failedRefunds).toEqual([expect.objectContaining({ outRefundNo: refund.outRefundNo, reason: 'ABNORMAL' })]);
    const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
    const next = newRefund(attempt, 'order', '再次退款', new Date());
    await stack.app.store.beginRefund(next, attempt, now());
    expect((await stack.reconcile()).failedRefunds).toEqual([]);
    await stack.app.store.completeRefund(next, now(), now());
    expect((await stack.reconcile()).problems).toEqual([]);
    await reseed(user);
  });

  it('a refund on its way is information; overdue or failed, it needs a person', async () => {
    const { user, refund } = await refundingOrder();
    let report = await stack.reconcile();
    expect(about(report.needsPerson, user.orderId)).toEqual([]);
    expect(report.info).toContainEqual(expect.stringMatching(/^refunds on their way: [1-9]/));
    report = await reconcile(db, TABLE, () => new Date(Date.now() + 25 * 60 * 60_000));
    expect(about(report.needsPerson, user.orderId)).toEqual([`refund ${refund.outRefundNo} (order ${user.orderId}): pending since ${refund.createdAt}`]);
    await stack.app.store.failRefund(refund, 'ABNORMAL', now());
    report = await stack.reconcile();
    expect(about(report.needsPerson, user.orderId)).toEqual([
      `refund ${refund.outRefundNo} (order ${user.orderId}): failed (ABNORMAL); README "When a refund failed"`,
    ]);
    expect(report.problems).toEqual([]);
    await reseed(user);
  });

  it('a refund case no refund was begun for needs a person; once one is begun, it is on its way', async () => {
    const user = await givenUser(stack, 0);
    const attempt = await pay(stack, user, { method: 1 });
    await pay(stack, user, { method: 2 });
    const payment = { channel: 'wechat' as const, outTradeNo: attempt.outTradeNo, transactionId: 'tx', amountFen: 8800, paidAt: now() };
    await stack.app.store.markRefundRequired((await stack.app.store.getAttempt(attempt.outTradeNo))!, payment, now());
    expect(about((await stack.reconcile()).needsPerson, user.orderId)).toEqual([
      `refund case ${attempt.outTradeNo} (order ${user.orderId}, 88.00 yuan): no refund begun; npm run refund -- ${user.orderId} --attempt ${attempt.outTradeNo} --reason …`,
    ]);
    const refundCase = (await stack.app.store.getAttempt(attempt.outTradeNo))!;
    await stack.app.store.beginRefund(newRefund(refundCase, 'duplicate', '重复支付', new Date()), refundCase, now());
    expect(about((await stack.reconcile()).needsPerson, user.orderId)).toEqual([]);
    await reseed(user);
  });
});
