import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { newRefund } from '../../../lib/domain/refund';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { refundItem as refundItemOf } from '../../../lib/store/items';
import { keys } from '../../../lib/store/keys';
import { reconcile } from '../../../lib/store/reconcile';
import { startTestStack, TABLE, type TestStack } from '../../support/stack';
import { givenUser, pay } from '../../support/world';

/** reconcile must flag what is wrong: each case breaks one invariant by hand and expects it named. */
let stack: TestStack;
let db: ReturnType<typeof createDocumentClient>;
beforeAll(async () => {
  stack = await startTestStack();
  db = createDocumentClient(stack.dynamo.endpoint);
});
afterAll(async () => {
  db.destroy();
  await stack.close();
});

async function update(key: { pk: string; sk: string }, expression: string, values: Record<string, unknown> = {}, names?: Record<string, string>) {
  const given = Object.keys(values).length ? values : undefined;
  await db.send(
    new UpdateCommand({ TableName: TABLE, Key: key, UpdateExpression: expression, ExpressionAttributeValues: given, ExpressionAttributeNames: names }),
  );
}

it('a consistent history is clean', async () => {
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  expect(await stack.reconcile()).toMatchObject({ problems: [], refunds: [] });
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
  const { DEFAULT_SWEEP, sweepOpenAttempts } = await import('../../../lib/pay/sweep');
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await update(keys.order(user.orderId), 'SET #s = :closed', { ':closed': 'closed' }, { '#s': 'status' });
  expect((await stack.reconcile()).problems).toContain(
    `order ${user.orderId}: closed but its attempt ${(await stack.app.store.getOrder(user.orderId))?.openAttempt?.outTradeNo} is still open`,
  );
  await sweepOpenAttempts(
    { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(Date.now() + 31 * 60_000) },
    { ...DEFAULT_SWEEP, payTimeoutMinutes: 30 },
  );
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
});
