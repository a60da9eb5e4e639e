import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Refund } from '../../../lib/domain/model';
import { completePayment } from '../../../lib/pay/completePayment';
import { requestRefund } from '../../../lib/pay/requestRefund';
import { keys } from '../../../lib/store/keys';
import { reopenAbnormalRefunds } from '../../../scripts/migrations/reopenAbnormalRefunds';
import { type NotifyServer, startNotifyServer } from '../../support/notifyServer';
import { freePort } from '../../support/ports';
import { rejection } from '../../support/rejection';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay } from '../../support/world';

/**
 * The migration of refunds WeChat reported ABNORMAL that the code of before 2026-11-30 recorded failed,
 * on a stack of its own: it scans the whole table.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let notify: NotifyServer;
beforeAll(async () => {
  const port = await freePort();
  stack = await startTestStack({ notifyBaseUrl: `http://127.0.0.1:${port}` });
  state = tableState(stack);
  notify = await startNotifyServer(stack.app, port);
});
afterAll(() =>
  expectBalancedBooksThenClose(
    stack,
    () => notify.close(),
    () => state.close(),
  ),
);

/** An order paid with WeChat + 800 points whose refund WeChat answered ABNORMAL: pending and ABNORMAL, as recorded now. */
async function refundedAbnormal() {
  const user = await givenUser(stack, 1000);
  const result = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  const { channel, transactionId, amountFen } = stack.gateway.pay(result.outTradeNo);
  await completePayment(stack.app, { channel, outTradeNo: result.outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() });
  stack.gateway.failNextRefund('wechat', 'abnormal');
  await requestRefund(stack.app, { orderId: user.orderId, reason: '用户取消订单' });
  await stack.gateway.refundsSettled();
  return { user, outTradeNo: result.outTradeNo, R1: `${result.outTradeNo}R1` };
}

/** The same, its refund recorded failed as the code of before did. */
async function recordedFailedAsAbnormal() {
  const refunded = await refundedAbnormal();
  await stack.app.store.failRefund((await stack.app.store.getRefund(refunded.R1)) as Refund, 'ABNORMAL', new Date().toISOString());
  expect(await state.order(refunded.user.orderId)).toMatchObject({ status: 'paid', refund: { status: 'failed' } });
  return refunded;
}

/** What a run did with these refunds alone: the cases share the table, and each run scans all of it. */
async function runFor(refunds: string[], options: { dryRun?: boolean } = {}) {
  const report = await reopenAbnormalRefunds(stack.db, TABLE, options);
  return {
    reopened: report.reopened.filter((no) => refunds.includes(no)),
    superseded: report.superseded.filter((r) => refunds.includes(r.outRefundNo)),
    handled: report.handled.filter((no) => refunds.includes(no)),
    movedOn: report.movedOn.filter((no) => refunds.includes(no)),
    marked: report.marked.filter((no) => refunds.includes(no)),
  };
}
const nothing = { reopened: [], superseded: [], handled: [], movedOn: [], marked: [] };

/** A new refund of the order, asked under the code of before after R1 failed: R2, which WeChat refuses (R1's amount is still at WeChat). */
async function askedAgain(orderId: number) {
  expect(await rejection(requestRefund(stack.app, { orderId, reason: '用户取消订单' }))).toMatchObject({ code: 'REFUND_FAILED' });
}

it('makes such a refund pending and ABNORMAL again; sent on at WeChat, it succeeds with the points back once; a second run does nothing', async () => {
  const { user, outTradeNo, R1 } = await recordedFailedAsAbnormal();
  expect(await runFor([R1], { dryRun: true })).toEqual({ ...nothing, reopened: [R1] });
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'failed' });

  expect(await runFor([R1])).toEqual({ ...nothing, reopened: [R1] });
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL', accepted: true, failureReason: undefined });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'refunding', refund: { out_refund_no: R1, status: 'pending' } });
  const report = await stack.reconcile();
  expect(report.abnormalRefunds.map((r) => r.outRefundNo)).toContain(R1);
  expect(report.problems).toEqual([]);
  expect(await rejection(requestRefund(stack.app, { orderId: user.orderId, reason: '用户取消订单' }))).toMatchObject({ code: 'REFUND_IN_PROGRESS' });
  expect(await runFor([R1])).toEqual(nothing);

  // A person sends it on at WeChat: REFUND.SUCCESS is recorded like any other.
  stack.gateway.resumeAbnormalRefund(R1);
  await stack.gateway.refundsSettled();
  expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded', refund: { status: 'succeeded' } });
  expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
  expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ outRefundNo: R1, status: 'SUCCESS' })]);
});

it('records a reopened refund that then fails for good, telling the shop again under an id of its own', async () => {
  const { user, R1 } = await recordedFailedAsAbnormal();
  const firstFailure = await stack.app.store.getEvent(`evt_order_refund_failed_${R1}`);
  expect(firstFailure).toMatchObject({ event: { data: { reason: 'ABNORMAL' } } });
  expect(await runFor([R1])).toEqual({ ...nothing, reopened: [R1] });

  // WeChat closes it instead (REFUND.CLOSED, or a follow-up's query): recorded failed, the order paid again.
  await stack.app.store.failRefund((await stack.app.store.getRefund(R1)) as Refund, 'CLOSED', new Date().toISOString());
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'failed', failureReason: 'CLOSED' });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', refund: { out_refund_no: R1, status: 'failed' } });
  expect(await stack.app.store.getEvent(`evt_order_refund_failed_${R1}`)).toEqual(firstFailure);
  expect(await stack.app.store.getEvent(`evt_order_refund_failed_${R1}_reopened`)).toMatchObject({
    event: { type: 'order.refund_failed', data: { out_refund_no: R1, reason: 'CLOSED' } },
  });
});

it('marks one a run of before reopened_at reopened, so that its second failure is told under an id of its own; not one ABNORMAL from its first answer', async () => {
  const { user, R1 } = await recordedFailedAsAbnormal();
  expect(await runFor([R1])).toEqual({ ...nothing, reopened: [R1] });
  // As a run of before 2026-11-30 left it: reopened, without the mark.
  await stack.db.send(new UpdateCommand({ TableName: TABLE, Key: keys.refund(R1), UpdateExpression: 'REMOVE reopened_at' }));
  // A refund WeChat answered ABNORMAL at once, under today's code: pending and ABNORMAL, never failed, no event.
  const { user: other, R1: abnormalAtOnce } = await refundedAbnormal();
  expect(await stack.app.store.getRefund(abnormalAtOnce)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });

  expect(await runFor([R1, abnormalAtOnce], { dryRun: true })).toEqual({ ...nothing, marked: [R1] });
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ reopenedAt: undefined });
  expect(await runFor([R1, abnormalAtOnce])).toEqual({ ...nothing, marked: [R1] });
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ reopenedAt: expect.any(String) });
  expect(await stack.app.store.getRefund(abnormalAtOnce)).toMatchObject({ reopenedAt: undefined });
  expect(await runFor([R1, abnormalAtOnce])).toEqual(nothing);

  await stack.app.store.failRefund((await stack.app.store.getRefund(R1)) as Refund, 'CLOSED', new Date().toISOString());
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', refund: { out_refund_no: R1, status: 'failed' } });
  expect(await stack.app.store.getEvent(`evt_order_refund_failed_${R1}_reopened`)).toMatchObject({ event: { data: { reason: 'CLOSED' } } });
  // The other one goes on as any pending refund: a person sends it on at WeChat.
  stack.gateway.resumeAbnormalRefund(abnormalAtOnce);
  await stack.gateway.refundsSettled();
  expect(await state.order(other.orderId)).toMatchObject({ status: 'refunded' });
});

it('lists one followed by a new refund of the same payment for a person, and changes nothing', async () => {
  const { user, outTradeNo, R1 } = await recordedFailedAsAbnormal();
  await askedAgain(user.orderId);
  const before = await state.snapshot();
  expect(await runFor([R1])).toEqual({ ...nothing, superseded: [{ outRefundNo: R1, latest: `${outTradeNo}R2` }] });
  expect(await state.snapshot()).toEqual(before);
});

it('leaves alone one a person noted as handled (paid back outside the gateways), which no refund can follow', async () => {
  const { user, R1 } = await recordedFailedAsAbnormal();
  expect(await stack.app.store.markHandled({ outRefundNo: R1 }, '已通过银行转账退款', new Date().toISOString())).toBe(true);
  const before = await state.snapshot();
  expect(await runFor([R1])).toEqual({ ...nothing, handled: [R1] });
  expect(await stack.app.store.reopenAbnormalRefund((await stack.app.store.getRefund(R1)) as Refund, new Date().toISOString())).toBe(false);
  expect(await state.snapshot()).toEqual(before);
  // Asked again, it would pay the payer twice: refused, naming the refund and the note.
  expect(await rejection(requestRefund(stack.app, { orderId: user.orderId, reason: '用户取消订单' }))).toMatchObject({
    code: 'REFUND_HANDLED',
    message: expect.stringContaining(`${R1}: 已通过银行转账退款`),
  });
  expect(await state.snapshot()).toEqual(before);
});

it('runs as npm run migrate:abnormal-refunds: --dry-run writes nothing; one left for a person exits 1 naming it', async () => {
  const superseded = await recordedFailedAsAbnormal();
  await askedAgain(superseded.user.orderId);
  const { R1 } = await recordedFailedAsAbnormal();
  const run = async (...args: string[]) => {
    const env = { ...process.env, DYNAMODB_ENDPOINT: stack.dynamo.endpoint, TABLE_NAME: TABLE };
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), 'scripts/migrations/reopenAbnormalRefunds.ts', ...args], {
        cwd: join(__dirname, '..', '..', '..'),
        env,
      });
      return { status: 0, out: stdout };
    } catch (error) {
      return { status: (error as { code: number }).code, out: String((error as { stdout: string }).stdout) };
    }
  };
  const dry = await run('--dry-run');
  expect(dry).toMatchObject({ status: 1, out: expect.stringMatching(new RegExp(`^would reopen \\d+: .*${R1}`, 'm')) });
  expect(dry.out).toContain(`for a person: ${superseded.R1} was followed by refund ${superseded.outTradeNo}R2 of the same payment`);
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'failed' });
  expect(await run()).toMatchObject({ status: 1, out: expect.stringMatching(new RegExp(`^reopened \\d+: .*${R1}`, 'm')) });
  expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });
}, 30_000);
