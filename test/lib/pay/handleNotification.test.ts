import type { GatewayRefundReport } from '../../../lib/domain/model';
import type { NotificationChannel, NotificationRefusal, OpenedNotification } from '../../../lib/gateways/paymentGateway';
import { wechatNotificationAnswer } from '../../../lib/gateways/wechatNotificationEnvelope';
import { logger } from '../../../lib/log';
import type { CompletePaymentDeps } from '../../../lib/pay/completePayment';
import { handleNotification } from '../../../lib/pay/handleNotification';
import { requestRefund } from '../../../lib/pay/requestRefund';
import { captureOutput, metricLines } from '../../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay } from '../../support/world';

/**
 * What the handler decides once a channel's adapter has opened a notification (the adapters' own checks,
 * signatures and decryption are tested with them and end to end): each opened kind, a refund report
 * that differs from its refund in one field only, and the log line and level a person is alerted by.
 * The notification is opened by a stand-in channel; the store, the table and the gateway are real.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let deps: CompletePaymentDeps;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  deps = stack.app;
  stack.gateway.refundSettings({ wechatMode: 'delayed', settleAfterMs: 60_000, alipayNotify: false });
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));
// Each call a Lambda invocation of its own: the keys bound for one never carry over (the handler's middleware does this deployed).
beforeEach(() => logger.resetKeys());

const opening = (opened: OpenedNotification): NotificationChannel => ({ channel: 'wechat', open: async () => opened, answer: wechatNotificationAnswer });
const handle = (opened: OpenedNotification) => captureOutput(() => handleNotification(deps, opening(opened), { headers: {}, rawBody: '{}' }));

/** A WeChat order paid and asked to be refunded: its refund pending at WeChat, which settles it only in a minute. */
async function pendingRefund() {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  const { channel, transactionId, amountFen } = stack.gateway.pay(outTradeNo);
  await handleNotification(
    deps,
    opening({ kind: 'payment', outTradeNo, payment: { channel, outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() } }),
    {
      headers: {},
      rawBody: '{}',
    },
  );
  const { refund } = await requestRefund(deps, { orderId: user.orderId, reason: '用户取消订单' });
  expect(refund).toMatchObject({ status: 'pending', cashFen: 8800 });
  const report: GatewayRefundReport = {
    channel: 'wechat',
    outRefundNo: refund.outRefundNo,
    outTradeNo,
    refundFen: 8800,
    state: 'succeeded',
    refundedAt: new Date().toISOString(),
  };
  return { user, outTradeNo, refund, report };
}

describe('a payment', () => {
  it('recorded is handled and counted, and every line carries its out_trade_no; the same again is handled too', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const { channel, transactionId, amountFen } = stack.gateway.pay(outTradeNo);
    const opened: OpenedNotification = {
      kind: 'payment',
      outTradeNo,
      payment: { channel, outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() },
    };
    const { result, lines } = await handle(opened);
    expect(result).toEqual({ kind: 'handled' });
    expect(metricLines(lines, 'NotificationAccepted')).toEqual([expect.objectContaining({ channel: 'wechat' })]);
    const logged = lines.filter((line) => line.level !== undefined);
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) expect(line).toMatchObject({ out_trade_no: outTradeNo });
    logger.resetKeys();
    expect((await handle(opened)).result).toEqual({ kind: 'handled' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
  });

  it('for an amount other than the attempt is refused amount_mismatch, an error, and changes nothing', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const before = await state.snapshot();
    const { result, lines } = await handle({
      kind: 'payment',
      outTradeNo,
      payment: { channel: 'wechat', outTradeNo, transactionId: 't-1', amountFen: 1, paidAt: new Date().toISOString() },
    });
    expect(result).toEqual({ kind: 'refused', reason: 'amount_mismatch' });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'notification refused', reason: 'amount_mismatch', out_trade_no: outTradeNo }),
    );
    expect(await state.snapshot()).toEqual(before);
  });
  it('for an attempt we never made is refused unknown_attempt, an error, and changes nothing', async () => {
    const before = await state.snapshot();
    const outTradeNo = '1T17000000000009999';
    const { result, lines } = await handle({
      kind: 'payment',
      outTradeNo,
      payment: { channel: 'wechat', outTradeNo, transactionId: 't-2', amountFen: 8800, paidAt: new Date().toISOString() },
    });
    expect(result).toEqual({ kind: 'refused', reason: 'unknown_attempt' });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'notification refused', reason: 'unknown_attempt', out_trade_no: outTradeNo }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'payment for an unknown attempt', out_trade_no: outTradeNo, channel: 'wechat' }),
    );
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('what the adapter refused or ignored', () => {
  it.each([
    ['merchant_mismatch', 'ERROR'],
    ['bad_signature', 'WARN'],
    ['stale', 'WARN'],
    ['malformed', 'WARN'],
  ] as const)('%s is refused as such, logged at %s, counted by its reason', async (reason: NotificationRefusal, level) => {
    const { result, lines } = await handle({ kind: 'refused', reason, outTradeNo: '9T1' });
    expect(result).toEqual({ kind: 'refused', reason });
    expect(lines).toContainEqual(expect.objectContaining({ level, message: 'notification refused', reason, out_trade_no: '9T1' }));
    expect(metricLines(lines, 'NotificationRefused')).toEqual([expect.objectContaining({ channel: 'wechat', reason })]);
  });

  it('one with nothing to record is handled, and a line without a trade names none', async () => {
    expect((await handle({ kind: 'ignored', outTradeNo: '9T2' })).result).toEqual({ kind: 'handled' });
    logger.resetKeys();
    const { lines } = await handle({ kind: 'refused', reason: 'malformed' });
    expect(lines.find((line) => line.message === 'notification refused')).not.toHaveProperty('out_trade_no');
  });
});

describe('a refund report', () => {
  it.each([
    ['another channel', { channel: 'alipay' as const }],
    ['another trade', { outTradeNo: '1T17000000000000000' }],
    ['another amount', { refundFen: 8799 }],
  ])('that differs from its refund only in %s is refused amount_mismatch, an error, and changes nothing', async (_what, differs) => {
    const { report, refund } = await pendingRefund();
    const before = await state.snapshot();
    const { result, lines } = await handle({ kind: 'refund', outTradeNo: report.outTradeNo, report: { ...report, ...differs } });
    expect(result).toEqual({ kind: 'refused', reason: 'amount_mismatch' });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'refund notification does not match its refund',
        expected_fen: 8800,
        out_refund_no: refund.outRefundNo,
      }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'notification refused', reason: 'amount_mismatch' }));
    expect(await state.snapshot()).toEqual(before);
  });

  it('of a refund we never asked for is refused unknown_refund, an error', async () => {
    const { report } = await pendingRefund();
    const { result, lines } = await handle({ kind: 'refund', outTradeNo: report.outTradeNo, report: { ...report, outRefundNo: `${report.outTradeNo}R9` } });
    expect(result).toEqual({ kind: 'refused', reason: 'unknown_refund' });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', reason: 'unknown_refund' }));
  });

  it('that matches is recorded: succeeded, or failed with its reason (FAILED when the gateway gives none)', async () => {
    const succeeded = await pendingRefund();
    expect((await handle({ kind: 'refund', outTradeNo: succeeded.outTradeNo, report: succeeded.report })).result).toEqual({ kind: 'handled' });
    expect(await state.order(succeeded.user.orderId)).toMatchObject({ status: 'refunded' });

    const failed = await pendingRefund();
    const { result, lines } = await handle({
      kind: 'refund',
      outTradeNo: failed.outTradeNo,
      report: { ...failed.report, state: 'failed', refundedAt: undefined },
    });
    expect(result).toEqual({ kind: 'handled' });
    expect(await stack.app.store.getRefund(failed.refund.outRefundNo)).toMatchObject({ status: 'failed', failureReason: 'FAILED' });
    expect(lines).toContainEqual(expect.objectContaining({ message: 'refund failed', out_refund_no: failed.refund.outRefundNo }));
    for (const line of lines.filter((l) => l.level !== undefined)) expect(line).toMatchObject({ out_refund_no: failed.refund.outRefundNo });
  });
});
