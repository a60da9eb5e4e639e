import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { newRefund } from '../../lib/domain/refund';
import { keys } from '../../lib/store/keys';
import { describeReport, exitCodeOf } from '../../scripts/reconcile';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../support/stack';
import { givenUser, pay } from '../support/world';

/** `npm run reconcile` exits 1 only when a person must act: a broken invariant, or money waiting for a person. */
let stack: TestStack;
let db: TestStack['db'];
beforeAll(async () => {
  stack = await startTestStack();
  db = stack.db;
});
afterAll(() => expectBalancedBooksThenClose(stack));

/** The script itself, as `npm run reconcile` runs it, on this stack's database. */
const runReconcile = () => runScript('scripts/reconcile.ts');

/** An operator's script, as npm runs it, on this stack's database. */
async function runScript(script: string, ...args: string[]): Promise<{ status: number; out: string }> {
  const env = { ...process.env, DYNAMODB_ENDPOINT: stack.dynamo.endpoint, TABLE_NAME: TABLE };
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), script, ...args], {
      cwd: join(__dirname, '..', '..'),
      env,
    });
    return { status: 0, out: stdout };
  } catch (error) {
    return { status: (error as { code: number }).code, out: String((error as { stdout: string }).stdout) };
  }
}

const now = () => new Date().toISOString();
const reseed = (user: { userId: number; orderId: number }) =>
  stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });

it('exits 0 on a fixture that seeds an order as already paid, and says what that order is', async () => {
  await stack.seed({
    users: [{ user_id: 9001, integral: 500, tokens: [] }],
    orders: [
      { order_id: 90_011, user_id: 9001, goods_name: '旧订单', goods_price: '20.00', free_shipping: true, status: 'paid' },
      { order_id: 90_012, user_id: 9001, goods_name: '新订单', goods_price: '30.00', free_shipping: true },
    ],
  });
  const { status, out } = await runReconcile();
  expect(out).toContain('  imported as paid outside paynow: 1 order\n');
  expect(out).toContain('needs a person: 0\n');
  expect(out).toContain('problems: 0\n');
  expect(out).not.toContain('not a paid attempt');
  expect(status).toBe(0);
}, 60_000);

it('exits 1 on a broken invariant, and 0 once it is repaired', async () => {
  const user = await givenUser(stack, 1000);
  await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  await db.send(
    new UpdateCommand({
      TableName: TABLE,
      Key: keys.account(user.userId),
      UpdateExpression: 'ADD integral_available :m',
      ExpressionAttributeValues: { ':m': -1 },
    }),
  );
  const { status, out } = await runReconcile();
  expect(out).toContain(`problems: 1\n  user ${user.userId}: available 199 + held 800 + spent 0 != credited 1000\n`);
  expect(status).toBe(1);
  await reseed(user);
  expect(exitCodeOf(await stack.reconcile())).toBe(0);
}, 60_000);

it('exits 1 while a refund has failed, 0 while one is on its way or once it succeeded', async () => {
  const user = await givenUser(stack, 1000);
  const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  const paid = (await stack.app.store.getAttempt(outTradeNo))!;
  await stack.app.store.captureAttempt(paid, { channel: 'wechat', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8000, paidAt: now() }, now());
  const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
  const refund = newRefund(attempt, 'order', '用户取消', new Date());
  await stack.app.store.beginRefund(refund, attempt, now());
  let report = await stack.reconcile();
  expect(describeReport(report)).toContain('  refunds on their way: 1 (pending less than a day; the sweeper follows them up)');
  expect(exitCodeOf(report)).toBe(0);

  // WeChat reports it ABNORMAL: still pending, but listed for a person at once.
  await stack.app.store.deferRefund(refund, { nextCheckAt: now(), accepted: true, lastError: 'ABNORMAL' }, now());
  let run = await runReconcile();
  expect(run.out).toContain(
    `abnormal refunds (WeChat cannot pay them into the payer's account): 1\n  ${refund.outRefundNo}  order ${user.orderId}  order  80.00 yuan  800 points`,
  );
  expect(run.out).toContain(
    `needs a person: 1\n  refund ${refund.outRefundNo} (order ${user.orderId}): abnormal at WeChat, the payer's account cannot take it; README "When a refund is abnormal"\n`,
  );
  expect(run.status).toBe(1);

  await stack.app.store.failRefund(refund, 'CLOSED', now());
  run = await runReconcile();
  const { status, out } = run;
  expect(out).toContain(`needs a person: 1\n  refund ${refund.outRefundNo} (order ${user.orderId}): failed (CLOSED); README "When a refund failed"\n`);
  expect(out).toContain('problems: 0\n');
  expect(status).toBe(1);

  const again = newRefund((await stack.app.store.getAttempt(outTradeNo))!, 'order', '再次退款', new Date());
  await stack.app.store.beginRefund(again, (await stack.app.store.getAttempt(outTradeNo))!, now());
  await stack.app.store.completeRefund(again, now(), now());
  report = await stack.reconcile();
  expect(report).toMatchObject({ problems: [], needsPerson: [] });
  expect(exitCodeOf(report)).toBe(0);
  await reseed(user);
}, 60_000);

it('exits 1 while a refund case waits for a person (automatic refunds off)', async () => {
  const user = await givenUser(stack, 0);
  const first = await pay(stack, user, { method: 1 });
  await pay(stack, user, { method: 2 });
  await stack.app.store.markRefundRequired(
    (await stack.app.store.getAttempt(first.outTradeNo))!,
    { channel: 'wechat', outTradeNo: first.outTradeNo, transactionId: 'tx', amountFen: 8800, paidAt: now() },
    now(),
  );
  const report = await stack.reconcile();
  expect(report.problems).toEqual([]);
  expect(describeReport(report)).toContain(
    `  refund case ${first.outTradeNo} (order ${user.orderId}, 88.00 yuan): no refund begun; npm run refund -- ${user.orderId} --attempt ${first.outTradeNo} --reason …`,
  );
  expect(exitCodeOf(report)).toBe(1);
  await reseed(user);
  expect(exitCodeOf(await stack.reconcile())).toBe(0);
});

it('exits 1 for a failed refund until npm run handled notes how a person dealt with it; a refund not failed cannot be noted', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  await stack.app.store.captureAttempt(
    (await stack.app.store.getAttempt(outTradeNo))!,
    { channel: 'wechat', outTradeNo, transactionId: 'tx-1', amountFen: 8800, paidAt: now() },
    now(),
  );
  const paid = (await stack.app.store.getAttempt(outTradeNo))!;
  const refund = newRefund(paid, 'order', '用户取消', new Date());
  await stack.app.store.beginRefund(refund, paid, now());
  const handled = (...args: string[]) => runScript('scripts/handled.ts', ...args);
  expect(await handled('refund', refund.outRefundNo, '--note', '已线下退款')).toMatchObject({
    status: 1,
    out: `refund ${refund.outRefundNo}: not noted, no refund of that number failed\n`,
  });
  await stack.app.store.failRefund(refund, 'WINDOW_CLOSED', now());
  expect((await runReconcile()).status).toBe(1);
  expect(await handled('refund', refund.outRefundNo)).toMatchObject({ status: 2 }); // no note
  expect(await handled('refund', refund.outRefundNo, '--note', '已线下退款')).toEqual({ status: 0, out: `refund ${refund.outRefundNo}: noted as handled\n` });
  expect(await runReconcile()).toMatchObject({ status: 0, out: expect.stringContaining('handled by a person: 1') });
  await reseed(user);
});

it('exits 1 while a second payment of a paid attempt is kept for a person', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  const payment = { channel: 'wechat' as const, outTradeNo, transactionId: 'tx-1', amountFen: 8800, paidAt: now() };
  await stack.app.store.captureAttempt((await stack.app.store.getAttempt(outTradeNo))!, payment, now());
  expect(exitCodeOf(await stack.reconcile())).toBe(0);
  await stack.app.store.recordPaymentConflict((await stack.app.store.getAttempt(outTradeNo))!, { ...payment, transactionId: 'tx-2' }, now());
  const report = await stack.reconcile();
  expect(report.problems).toEqual([]);
  expect(exitCodeOf(report)).toBe(1);
  await reseed(user);
  expect(exitCodeOf(await stack.reconcile())).toBe(0);
});
