import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { keys } from '../../../lib/store/keys';
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

async function update(key: { pk: string; sk: string }, expression: string, values: Record<string, unknown>, names?: Record<string, string>) {
  await db.send(
    new UpdateCommand({ TableName: TABLE, Key: key, UpdateExpression: expression, ExpressionAttributeValues: values, ExpressionAttributeNames: names }),
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
