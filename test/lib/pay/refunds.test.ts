import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { eventShard } from '../../../lib/domain/events';
import type { Refund } from '../../../lib/domain/model';
import { GatewayError, type PaymentGateway } from '../../../lib/gateways/paymentGateway';
import { logger } from '../../../lib/log';
import { type CompletePaymentDeps, completePayment } from '../../../lib/pay/completePayment';
import { followUpRefund } from '../../../lib/pay/followUpRefund';
import { beforeEachCall, tradeOfCall } from '../../../lib/pay/gatewayRateLimit';
import { getPayStatus } from '../../../lib/pay/payStatus';
import { recordRefundAbnormal, recordRefundResult } from '../../../lib/pay/recordRefundResult';
import { requestRefund } from '../../../lib/pay/requestRefund';
import { DEFAULT_SWEEP, sweep as sweepDue } from '../../../lib/pay/sweep';
import { keys } from '../../../lib/store/keys';
import { WriteConflict } from '../../../lib/store/payStore';
import { buildRefundNotification, buildWechatRefundNotification } from '../../../scripts/sandbox/notifications';
import { captureOutput, metricLines } from '../../support/logs';
import { type NotifyServer, startNotifyServer } from '../../support/notifyServer';
import { freePort } from '../../support/ports';
import { rejection } from '../../support/rejection';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { type GivenUser, gatewayPayment, givenUser, pay, storeWith } from '../../support/world';

/**
 * Refunds over the real local stack: the app, dynalite, and the sandbox gateways, whose refund
 * notifications reach the app's notification handlers over HTTP. Each path the issue names: an order
 * refunded at each gateway, points only, automatic refunds of refund cases, two asks at once, a
 * notification racing the query, a replayed notification, a crash between the gateway call and the
 * write, gateway errors, final failures and a new number after them, refund windows.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let notify: NotifyServer;
let deps: CompletePaymentDeps;

beforeAll(async () => {
  const port = await freePort();
  stack = await startTestStack({ notifyBaseUrl: `http://127.0.0.1:${port}` });
  state = tableState(stack);
  notify = await startNotifyServer(stack.app, port);
  deps = stack.app;
});
afterAll(() =>
  expectBalancedBooksThenClose(
    stack,
    () => notify.close(),
    () => state.close(),
  ),
);
afterEach(() => stack.gateway.refundSettings({ wechatMode: 'delayed', settleAfterMs: 200, alipayNotify: true }));

const MINUTE = 60_000;
const sweep = (ms = MINUTE, over: Partial<CompletePaymentDeps> = {}) => sweepDue({ ...deps, ...over, now: () => new Date(Date.now() + ms) }, DEFAULT_SWEEP);

/** Pays `user`'s order as the gateway and a notification would: WeChat (4: + 800 points), Alipay (5: + 800), or points only (3). */
async function paidOrder(method: 1 | 2 | 3 | 4 | 5, user?: GivenUser) {
  const who = user ?? (await givenUser(stack, 1000));
  const points = method === 3 ? 8800 : method >= 4 ? 800 : 0;
  if (method === 3) await stack.seed({ users: [{ user_id: who.userId, integral: 10_000, tokens: [] }] });
  const result = await pay(stack, who, { method, points, priceFen: 8800 - points });
  if (result.outcome === 'pay_param') {
    if (typeof result.payParam === 'string') stack.gateway.registerAlipayOrder(result.payParam);
    const { channel, transactionId, amountFen } = stack.gateway.pay(result.outTradeNo);
    expect(await completePayment(deps, { channel, outTradeNo: result.outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() })).toBe('paid');
  }
  return { user: who, outTradeNo: result.outTradeNo };
}

/** Backdates an attempt's payment past WeChat's one-year refund window; answers the new paid_at. */
async function paidAYearAgo(outTradeNo: string): Promise<string> {
  const yearAgo = new Date(Date.now() - 366 * 24 * 60 * MINUTE).toISOString();
  await stack.db.send(
    new UpdateCommand({
      TableName: TABLE,
      Key: keys.attempt(outTradeNo),
      UpdateExpression: 'SET paid_at = :at',
      ExpressionAttributeValues: { ':at': yearAgo },
    }),
  );
  return yearAgo;
}

const refundAsk = (orderId: number, over: { reason?: string; outTradeNo?: string } = {}) => requestRefund(deps, { orderId, reason: '用户取消订单', ...over });
const refused = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: { code?: string }) => error.code,
  );
/** The error an ask was refused with; a success answers an error too, so that no assertion on it passes by accident. */

describe('an order refunded on request', () => {
  it('WeChat + points: pending until WeChat notifies, then refunded with its points back; asking again refunds nothing more', async () => {
    const { user, outTradeNo } = await paidOrder(4);
    const asked = await refundAsk(user.orderId);
    expect(asked.order).toMatchObject({ status: 'refunding', refund: { status: 'pending', cashFen: 8000, points: 800 } });
    expect(asked.refund).toMatchObject({ status: 'pending', outRefundNo: `${outTradeNo}R1`, accepted: true });
    const again = await rejection(refundAsk(user.orderId));
    expect(again).toMatchObject({ code: 'REFUND_IN_PROGRESS', message: expect.stringContaining(`${outTradeNo}R1`) });
    expect(await getPayStatus(deps, user.userId, user.orderId)).toMatchObject({
      order_status: 'refunding',
      refund: { status: 'pending', refund_price: '80.00', refund_integral: 800, refunded_at: null },
    });
    await stack.gateway.refundsSettled(); // WeChat settles it and sends REFUND.SUCCESS to /notify/wechat/refund
    expect(notify.received).toContainEqual({ path: '/notify/wechat/refund', status: 204, body: '' });
    const status = await getPayStatus(deps, user.userId, user.orderId);
    expect(status).toMatchObject({
      order_status: 'refunded',
      out_trade_no: outTradeNo,
      refund: { status: 'succeeded', refund_price: '80.00', refund_integral: 800 },
    });
    expect(status.refund?.refunded_at).toMatch(/\+08:00$/);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect(await refundAsk(user.orderId)).toMatchObject({ order: { status: 'refunded' }, refund: { outRefundNo: `${outTradeNo}R1`, status: 'succeeded' } });
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
    expect(stack.gateway.refunds(outTradeNo)[0]).toMatchObject({ amountFen: 8000, status: 'SUCCESS', reason: '用户取消订单' });
  });

  it('Alipay + points: refunded at once; the notification Alipay sends after it is acknowledged and changes nothing', async () => {
    const { user, outTradeNo } = await paidOrder(5);
    expect(await refundAsk(user.orderId)).toMatchObject({ order: { status: 'refunded' }, refund: { status: 'succeeded', cashFen: 8000, points: 800 } });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    const before = await state.snapshot();
    await stack.gateway.refundsSettled(); // the post-refund trade_status_sync to /notify/alipay
    expect(notify.received.filter((n) => n.path === '/notify/alipay')).toContainEqual({ path: '/notify/alipay', status: 200, body: 'success' });
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ amountFen: 8000, status: 'SUCCESS' })]);
  });

  it('points only: refunded at once, no gateway involved', async () => {
    const { user } = await paidOrder(3);
    const { result, lines } = await captureOutput(() => refundAsk(user.orderId));
    expect(result.refund).toMatchObject({ status: 'succeeded', cashFen: 0, points: 8800, channel: undefined });
    expect(lines.filter((line) => line.level === 'ERROR' || line.level === 'WARN')).toEqual([]); // nothing to send, nothing failed
    // Counted and told as any refund that succeeds, so that asked and succeeded add up on the dashboards.
    expect(metricLines(lines, 'Refund').map((line) => line.outcome)).toEqual(['requested', 'succeeded']);
    expect(lines.filter((line) => line.message === 'refund succeeded')).toEqual([
      expect.objectContaining({ level: 'INFO', out_refund_no: result.refund.outRefundNo }),
    ]);
    expect(lines.find((line) => line.message === 'refund succeeded')).not.toHaveProperty('repaid_outside'); // it went nowhere outside
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 10_000, integral_spent: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'refund')).toEqual([expect.objectContaining({ points: 8800 })]);
  });

  it('is refused for an order that is unknown or not paid, changing nothing', async () => {
    const user = await givenUser(stack, 0);
    await pay(stack, user, { method: 1 });
    const before = await state.snapshot();
    expect(await refused(refundAsk(999_999))).toBe('ORDER_NOT_FOUND');
    expect(await refused(refundAsk(user.orderId))).toBe('ORDER_NOT_PAID');
    expect(await state.snapshot()).toEqual(before);
  });

  it('a refunded payment whose refund cannot be read is a fault naming it, never a second refund', async () => {
    const { user, outTradeNo } = await paidOrder(5); // Alipay refunds at once
    await refundAsk(user.orderId);
    const before = await state.snapshot();
    const refundLost = { ...deps, store: storeWith(stack, { getRefund: async () => undefined }) };
    const error = await rejection(requestRefund(refundLost, { orderId: user.orderId, reason: '再退一次' }));
    expect(error).toMatchObject({ message: `attempt ${outTradeNo} is refunded without a refund` });
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('asked twice at once: one refund at the gateway, the other ask told it is in progress', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const answers = await Promise.allSettled([refundAsk(user.orderId), refundAsk(user.orderId)]);
    const codes = answers.map((a) => (a.status === 'fulfilled' ? 'accepted' : (a.reason as { code: string }).code)).sort();
    expect(codes).toEqual(['REFUND_IN_PROGRESS', 'accepted']);
    await stack.gateway.refundsSettled();
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

describe('asks that name a payment, and asks refused', () => {
  it('a payment that is not there, or belongs to another order, is refused ATTEMPT_NOT_FOUND, changing nothing', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const other = await paidOrder(1);
    const before = await state.snapshot();
    expect(await refused(refundAsk(user.orderId, { outTradeNo: `${user.orderId}T99` }))).toBe('ATTEMPT_NOT_FOUND');
    expect(await refused(refundAsk(user.orderId, { outTradeNo: other.outTradeNo }))).toBe('ATTEMPT_NOT_FOUND');
    expect(await state.snapshot()).toEqual(before);
    expect([...stack.gateway.refunds(outTradeNo), ...stack.gateway.refunds(other.outTradeNo)]).toEqual([]);
  });

  it('a payment of the order that neither paid it nor is a refund case is refused NOT_REFUNDABLE, naming its state', async () => {
    const user = await givenUser(stack, 0);
    const replaced = await pay(stack, user, { method: 1 });
    const alipay = await pay(stack, user, { method: 2 }); // the WeChat attempt is closed and released
    const { outTradeNo } = alipay;
    if (alipay.outcome === 'pay_param' && typeof alipay.payParam === 'string') stack.gateway.registerAlipayOrder(alipay.payParam);
    stack.gateway.pay(outTradeNo);
    expect(
      await completePayment(deps, { channel: 'alipay', outTradeNo, transactionId: `t-${outTradeNo}`, amountFen: 8800, paidAt: new Date().toISOString() }),
    ).toBe('paid');
    const { status } = (await state.attempt(replaced.outTradeNo)) as { status: string };
    expect(status).not.toMatch(/paid|refund/);
    const before = await state.snapshot();
    const error = await rejection(refundAsk(user.orderId, { outTradeNo: replaced.outTradeNo }));
    expect(error).toMatchObject({ code: 'NOT_REFUNDABLE', message: expect.stringContaining(`这笔支付的状态是 ${status}`) });
    expect(await state.snapshot()).toEqual(before);
  });

  it("naming the order's own payment refunds the order, as asking by the order does", async () => {
    const { user, outTradeNo } = await paidOrder(5);
    expect(await refundAsk(user.orderId, { outTradeNo })).toMatchObject({
      order: { status: 'refunded' },
      refund: { kind: 'order', outTradeNo, outRefundNo: `${outTradeNo}R1`, status: 'succeeded', cashFen: 8000, points: 800 },
    });
    await stack.gateway.refundsSettled();
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('an ask that loses the race to begin every time is told a refund is in progress; nothing is written or sent', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const before = await state.snapshot();
    let begins = 0;
    const losing = Object.assign(Object.create(deps.store) as typeof deps.store, {
      beginRefund: async () => {
        begins++;
        throw new WriteConflict('state');
      },
    });
    const error = await rejection(requestRefund({ ...deps, store: losing }, { orderId: user.orderId, reason: '用户取消订单' }));
    expect(error).toMatchObject({ code: 'REFUND_IN_PROGRESS', cause: expect.any(WriteConflict) });
    expect(begins).toBe(3);
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('a refusal for good at the first call (confirmed by a query) is refused REFUND_FAILED with its reason; the order is paid again, no point back', async () => {
    const { user, outTradeNo } = await paidOrder(4);
    const wechat = stack.app.gateways.wechat;
    const refusing: PaymentGateway = { ...wechat, refund: async () => ({ state: 'failed', reason: 'USER_ACCOUNT_ABNORMAL 退款请求失败' }) };
    const error = await rejection(
      requestRefund({ ...deps, gateways: { ...deps.gateways, wechat: refusing } }, { orderId: user.orderId, reason: '用户取消订单' }),
    );
    expect(error).toMatchObject({ code: 'REFUND_FAILED', message: expect.stringContaining('USER_ACCOUNT_ABNORMAL') });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', refund: { out_refund_no: `${outTradeNo}R1`, status: 'failed' } });
    expect(await state.account(user.userId)).toMatchObject({ integral_spent: 800 });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('a refund still pending a day after it was asked is reported overdue on each follow-up (an error line and the overdue count), not before', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'balance'); // refused for now: stays pending
    await refundAsk(user.orderId);
    const refund = (await stack.app.store.getRefund(`${outTradeNo}R1`)) as Refund;
    expect(refund.status).toBe('pending');
    const followUpAt = async (ms: number) => {
      const { lines } = await captureOutput(() => followUpRefund({ ...deps, now: () => new Date(Date.parse(refund.createdAt) + ms) }, refund));
      return {
        errors: lines.filter((line) => line.message === 'refund still pending after a day'),
        overdue: metricLines(lines, 'Refund').filter((m) => m.outcome === 'overdue'),
      };
    };
    const DAY = 24 * 60 * MINUTE;
    expect(await followUpAt(DAY)).toEqual({ errors: [], overdue: [] });
    const late = await followUpAt(DAY + 1);
    expect(late.errors).toEqual([expect.objectContaining({ level: 'ERROR', out_refund_no: `${outTradeNo}R1`, order_id: user.orderId })]);
    expect(late.overdue).toEqual([expect.objectContaining({ kind: 'order', Refund: 1 })]);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

describe('notifications and queries of one refund', () => {
  it('a notification racing the query records the refund once: points back once, one success counted', async () => {
    stack.gateway.refundSettings({ alipayNotify: false, wechatMode: 'delayed', settleAfterMs: 200 });
    const silent = await paidOrder(4);
    stack.gateway.failNextRefund('wechat', 'silent'); // WeChat pays it out but keeps its notification to itself
    await refundAsk(silent.user.orderId);
    await stack.gateway.refundsSettled();
    const refund = stack.gateway.refunds(silent.outTradeNo)[0];
    const notification = buildRefundNotification(stack.gateway.trade(silent.outTradeNo)!, refund, stack.credentials);
    const { lines } = await captureOutput(() =>
      Promise.all([
        fetch(`${refund.notifyUrl}`, { method: 'POST', headers: notification.headers, body: notification.body }),
        sweep(), // queries it: SUCCESS
      ]),
    );
    expect(metricLines(lines, 'Refund').filter((m) => m.outcome === 'succeeded')).toHaveLength(1);
    expect(await state.order(silent.user.orderId)).toMatchObject({ status: 'refunded' });
    expect(await state.account(silent.user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    expect((await state.ledger(silent.user.userId)).filter((e) => e.kind === 'refund')).toHaveLength(1);
  });

  it('a result contradicting the recorded one changes nothing and is reported (an error line and the contradicted count); a repeat of it is quiet', async () => {
    const { outTradeNo } = await paidOrder(5); // Alipay refunds at once: succeeded
    await refundAsk((await stack.app.store.getAttempt(outTradeNo))!.orderId);
    await stack.gateway.refundsSettled();
    const before = await state.snapshot();
    const record = (result: Parameters<typeof recordRefundResult>[2]) => captureOutput(() => recordRefundResult(deps, `${outTradeNo}R1`, result));
    const contradicted = await record({ state: 'failed', reason: 'ACQ.SYSTEM_ERROR' });
    expect(contradicted.result).toBe('duplicate');
    expect(contradicted.lines.filter((line) => line.level === 'ERROR')).toEqual([
      expect.objectContaining({
        message: 'refund result contradicts the recorded one',
        recorded: 'succeeded',
        reported: 'failed',
        out_refund_no: `${outTradeNo}R1`,
        handled: false,
      }),
    ]);
    expect(metricLines(contradicted.lines, 'Refund')).toEqual([expect.objectContaining({ outcome: 'contradicted', kind: 'order' })]);
    const repeated = await record({ state: 'succeeded' });
    expect(repeated.result).toBe('duplicate');
    expect(repeated.lines).toEqual([]);
    expect(await state.snapshot()).toEqual(before);
  });

  it('a notification replayed later changes nothing and is still acknowledged', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    await refundAsk(user.orderId);
    await stack.gateway.refundsSettled();
    const refund = stack.gateway.refunds(outTradeNo)[0];
    const notification = buildRefundNotification(stack.gateway.trade(outTradeNo)!, refund, stack.credentials);
    const before = await state.snapshot();
    const replay = await fetch(`${refund.notifyUrl}`, { method: 'POST', headers: notification.headers, body: notification.body });
    expect(replay.status).toBe(204);
    expect(await state.snapshot()).toEqual(before);
  });

  it('a genuine notification whose amount or refund number is not ours changes nothing', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'silent'); // only the notifications below reach us
    const { refund } = await refundAsk(user.orderId);
    const before = await state.snapshot();
    const { mchid } = stack.credentials.wechat;
    const resource = {
      mchid,
      out_trade_no: outTradeNo,
      out_refund_no: refund.outRefundNo,
      refund_id: '50300000000001',
      refund_status: 'SUCCESS',
      success_time: '2026-11-29T16:00:00+08:00',
      amount: { total: 8800, refund: 1, payer_total: 8800, payer_refund: 1 },
    };
    const send = (body: object) => {
      const n = buildWechatRefundNotification(stack.credentials.wechat, body);
      return fetch(notifyUrlOf(), { method: 'POST', headers: n.headers, body: n.body });
    };
    expect((await send(resource)).status).toBe(400); // 1 fen instead of 88.00
    expect((await send({ ...resource, amount: { total: 8800, refund: 8800 }, out_refund_no: `${outTradeNo}R7` })).status).toBe(404);
    expect((await send({ ...resource, amount: { total: 8800, refund: 8800 }, mchid: '1900000099' })).status).toBe(400);
    expect(await state.snapshot()).toEqual(before);
    // WeChat settles it; the sweeper's query records it.
    await stack.gateway.refundsSettled();
    await sweep();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

describe('crashes and gateway errors', () => {
  it('the refund call is made but its answer is lost: pending, then the sweeper sends the same number and WeChat refunds it once', async () => {
    // WeChat settles it and notifies 1.5 s after the lost answer, not before paynow has recorded it
    // pending: a notification at once could win that race on a busy machine (and the refund would be,
    // rightly, succeeded already).
    const settings = stack.gateway.refundSettings();
    stack.gateway.refundSettings({ wechatMode: 'delayed', settleAfterMs: 1500 });
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.failNext('wechat.refund', 1, 'drop');
    const { refund } = await refundAsk(user.orderId);
    expect(refund).toMatchObject({ status: 'pending', accepted: false, checks: 1 });
    expect(refund.lastError).toMatch(/unreachable/);
    await sweep(2 * MINUTE);
    await stack.gateway.refundsSettled();
    stack.gateway.refundSettings(settings);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('the process dies after the gateway refunded and before the write: the sweeper finds it refunded', async () => {
    stack.gateway.refundSettings({ wechatMode: 'immediate', alipayNotify: false });
    const { user, outTradeNo } = await paidOrder(5);
    const store = storeWith(stack, {
      completeRefund: async () => {
        throw new Error('process died');
      },
    });
    const { refund } = await requestRefund({ ...deps, store }, { orderId: user.orderId, reason: '用户取消订单' });
    expect(refund).toMatchObject({ status: 'pending' });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ status: 'SUCCESS' })]);
    // Sends the same number: Alipay answers fund_change N, the query says REFUND_SUCCESS. Both are calls
    // through the gateways the sweep is given, so its cap paces and counts each.
    const calls: string[] = [];
    const seen = beforeEachCall(deps.gateways, (_channel, operation, args) => {
      if (tradeOfCall(args) === outTradeNo) calls.push(operation);
    });
    await sweep(MINUTE, { gateways: seen });
    expect(calls).toEqual(['refund', 'queryRefund']);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('a refused call (the merchant balance) or a gateway error leaves it pending with the reason; it is sent again until it goes through', async () => {
    const { user, outTradeNo } = await paidOrder(2);
    stack.gateway.failNextRefund('alipay', 'balance');
    const first = await refundAsk(user.orderId);
    expect(first.refund).toMatchObject({ status: 'pending', lastError: expect.stringMatching(/SELLER_BALANCE_NOT_ENOUGH/) });
    stack.gateway.failNext('alipay.refund', 1, '500');
    expect(await sweep(2 * MINUTE)).toMatchObject({ refunds_pending: 1 });
    expect(await stack.app.store.getRefund(first.refund.outRefundNo)).toMatchObject({ status: 'pending', checks: 2 });
    await sweep(10 * MINUTE);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });
});

describe('a fault of ours during a follow-up', () => {
  it('is not taken for a gateway error: it reaches the caller, and the refund stays as it was for the next follow-up', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'balance'); // pending after the first call
    await refundAsk(user.orderId);
    const refund = (await stack.app.store.getRefund(`${outTradeNo}R1`)) as Refund;
    const before = await state.snapshot();
    const broken: PaymentGateway = {
      ...stack.app.gateways.wechat,
      refund: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'status')");
      },
    };
    await expect(followUpRefund({ ...deps, gateways: { ...deps.gateways, wechat: broken } }, refund)).rejects.toThrow(TypeError);
    expect(await state.snapshot()).toEqual(before);
    await followUpRefund(deps, refund);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

/** The store, with the sweep's read of due refunds narrowed to `outRefundNo` (other tests' may be due too), then `meanwhile` run. */
const dueOnly = (outRefundNo: string, meanwhile: () => Promise<unknown> = async () => undefined) =>
  storeWith(stack, {
    findDueRefunds: async (...args) => {
      const due = (await stack.app.store.findDueRefunds(...args)).filter((refund) => refund.outRefundNo === outRefundNo);
      await meanwhile();
      return due;
    },
  });

describe('the sweep following up a refund', () => {
  /** An Alipay refund left pending by a refused first call (the merchant balance), due at the next sweep. */
  async function pendingRefund() {
    const { user, outTradeNo } = await paidOrder(2);
    stack.gateway.failNextRefund('alipay', 'balance');
    const { refund } = await refundAsk(user.orderId);
    expect(refund).toMatchObject({ status: 'pending' });
    return { user, outTradeNo, refund };
  }

  it.each([
    ['answered PROCESSING', 'processing'],
    ['failing at the gateway', 'gateway error'],
  ] as const)('%s while a notification records its success counts as neither settled nor pending: the sweep changed nothing', async (_how, answer) => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.refundSettings({ settleAfterMs: 3_000 }); // still PROCESSING at the sweep's query, however slow the machine
    const { refund } = await refundAsk(user.orderId);
    const wechat = stack.app.gateways.wechat;
    const notifiedMeanwhile: PaymentGateway = {
      ...wechat,
      queryRefund: async (request) => {
        const processing = await wechat.queryRefund(request);
        await recordRefundResult(deps, refund.outRefundNo, { state: 'succeeded', refundedAt: new Date().toISOString() });
        if (answer === 'gateway error') throw new GatewayError('wechat refund query: connection dropped');
        return processing;
      },
    };
    const report = await sweep(2 * MINUTE, { store: dueOnly(refund.outRefundNo), gateways: { ...deps.gateways, wechat: notifiedMeanwhile } });
    expect(report).toMatchObject({ refunds_settled: 0, refunds_pending: 0, failed: 0 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    await stack.gateway.refundsSettled();
    expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ status: 'SUCCESS' })]);
  });

  it("comes before group 0's due attempts: a backlog of attempts bigger than a run cannot hold it back", async () => {
    const { user, refund } = await pendingRefund();
    const { outTradeNo } = await pay(stack, await givenUser(stack, 0), { method: 1 });
    const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
    const store = storeWith(stack, {
      findDueRefunds: async (...args) => (await stack.app.store.findDueRefunds(...args)).filter((due) => due.outRefundNo === refund.outRefundNo),
      // The first shard's first page: this attempt; every other shard empty.
      findDueAttempts: async (shard) => ({ attempts: shard === 0 ? [attempt] : [] }),
    });
    const order: string[] = [];
    const gateways = beforeEachCall(deps.gateways, (channel, operation) => void order.push(`${channel} ${operation}`));
    const at = Date.parse(attempt.createdAt) + 2 * MINUTE + 1_000;
    await sweepDue({ ...deps, store, gateways, now: () => new Date(at) }, { ...DEFAULT_SWEEP, concurrency: 1 }, 0);
    expect(order).toEqual(['alipay refund', 'wechat queryTrade']);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });

  it('whose result a notification recorded meanwhile counts as neither settled nor pending: the sweep settled nothing', async () => {
    const { user, outTradeNo, refund } = await pendingRefund();
    const store = dueOnly(refund.outRefundNo, () => recordRefundResult(deps, refund.outRefundNo, { state: 'succeeded', refundedAt: new Date().toISOString() }));
    expect(await sweep(2 * MINUTE, { store })).toMatchObject({ refunds_settled: 0, refunds_pending: 0, failed: 0 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ status: 'SUCCESS' })]);
  });

  it('that fails with a fault of ours is counted failed, in a line naming the refund; the next sweep settles it', async () => {
    const { user, refund } = await pendingRefund();
    const store = storeWith(stack, {
      findDueRefunds: dueOnly(refund.outRefundNo).findDueRefunds,
      getRefund: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'status')");
      },
    });
    logger.resetKeys();
    const { lines, result } = await captureOutput(() => sweep(2 * MINUTE, { store }));
    expect(result).toMatchObject({ failed: 1, refunds_settled: 0 });
    expect(lines.filter((line) => line.message === 'sweep failed')).toEqual([
      expect.objectContaining({ level: 'WARN', out_refund_no: refund.outRefundNo, error: expect.objectContaining({ name: 'TypeError' }) }),
    ]);
    expect(await sweep(2 * MINUTE, { store: dueOnly(refund.outRefundNo) })).toMatchObject({ refunds_settled: 1 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

describe('what a person reads, and what the gateway is asked', () => {
  it("a refund's life in the logs: asked, refused for now at the gateway, failed, each line with its order and trade", async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const outRefundNo = `${outTradeNo}R1`;
    stack.gateway.failNextRefund('wechat', 'balance');
    logger.resetKeys(); // a call of its own, as each invocation is: nothing bound by the pay carries over
    const asked = await captureOutput(() => refundAsk(user.orderId));
    expect(asked.lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'refund asked', out_refund_no: outRefundNo, kind: 'order', cash_fen: 8800, points: 0 }),
    );
    expect(asked.lines).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'refund follow-up failed at the gateway', out_refund_no: outRefundNo }),
    );
    for (const line of asked.lines.filter((l) => l.level !== undefined)) expect(line).toMatchObject({ order_id: user.orderId, out_trade_no: outTradeNo });

    const refund = (await stack.app.store.getRefund(outRefundNo)) as Refund;
    const failed = await captureOutput(() => recordRefundResult(deps, outRefundNo, { state: 'failed', reason: 'ABNORMAL' }));
    expect(failed.lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'refund failed', out_refund_no: outRefundNo, order_id: user.orderId, failure_reason: 'ABNORMAL' }),
    );
    expect(refund.status).toBe('pending');
  });

  it('a refund the gateway took but has not paid yet is not told or counted as succeeded', async () => {
    const { user } = await paidOrder(1); // WeChat: PROCESSING until it notifies
    const { lines, result } = await captureOutput(() => refundAsk(user.orderId));
    expect(result.refund).toMatchObject({ status: 'pending' });
    expect(lines.filter((line) => line.message === 'refund succeeded')).toEqual([]);
    expect(metricLines(lines, 'Refund')).toEqual([expect.objectContaining({ outcome: 'requested' })]);
    await stack.gateway.refundsSettled();
  });

  it('a refund that succeeds says so in an info line with its numbers', async () => {
    const { user, outTradeNo } = await paidOrder(2); // Alipay: succeeded at once
    const { lines } = await captureOutput(() => refundAsk(user.orderId));
    await stack.gateway.refundsSettled();
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'refund succeeded', out_refund_no: `${outTradeNo}R1`, order_id: user.orderId, cash_fen: 8800 }),
    );
  });

  it('a first call that fails with a fault of ours leaves the refund pending with an error line; the sweeper sends it', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const broken: PaymentGateway = {
      ...stack.app.gateways.wechat,
      refund: async () => {
        throw new TypeError('boom');
      },
    };
    const { result, lines } = await captureOutput(() =>
      requestRefund({ ...deps, gateways: { ...deps.gateways, wechat: broken } }, { orderId: user.orderId, reason: '用户取消订单' }),
    );
    expect(result.refund).toMatchObject({ status: 'pending', accepted: false });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'first refund call failed; the sweeper follows it up', out_refund_no: `${outTradeNo}R1` }),
    );
    await followUpRefund(deps, result.refund);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });

  it('a follow-up of a refund the gateway took queries it and sends nothing again', async () => {
    const { outTradeNo, user } = await paidOrder(1);
    stack.gateway.refundSettings({ settleAfterMs: 3_000 }); // still PROCESSING at the follow-up, however slow the machine
    const { refund } = await refundAsk(user.orderId);
    expect(refund).toMatchObject({ status: 'pending', accepted: true });
    const calls: string[] = [];
    const gateways = beforeEachCall(stack.app.gateways, (_channel, operation) => {
      calls.push(operation);
    });
    expect(await followUpRefund({ ...deps, gateways }, refund)).toBe('pending');
    expect(calls).toEqual(['queryRefund']);
    await stack.gateway.refundsSettled();
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('a follow-up from a copy that another follow-up already moved on changes nothing and says so in an info line', async () => {
    const { user } = await paidOrder(1);
    stack.gateway.refundSettings({ settleAfterMs: 3_000 }); // still PROCESSING at both follow-ups, however slow the machine
    const { refund } = await refundAsk(user.orderId);
    const moved = (result: { lines: Record<string, unknown>[] }) => result.lines.filter((line) => line.message === 'refund moved on during its follow-up');
    const first = await captureOutput(() => followUpRefund(deps, refund));
    expect(first.result).toBe('pending');
    expect(moved(first)).toEqual([]);
    const after = await stack.app.store.getRefund(refund.outRefundNo);
    const second = await captureOutput(() => followUpRefund(deps, refund)); // the same copy again: its deferral is stale
    expect(second.result).toBe('moved_on');
    expect(moved(second)).toEqual([expect.objectContaining({ level: 'INFO', out_refund_no: refund.outRefundNo })]);
    expect(await stack.app.store.getRefund(refund.outRefundNo)).toEqual(after);
    await stack.gateway.refundsSettled();
  });

  it('a refusal of the refund call is not believed while a query shows the number went through: processing stays pending, succeeded is recorded', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.refundSettings({ settleAfterMs: 3_000 }); // still PROCESSING at the follow-up, however slow the machine
    const { refund } = await refundAsk(user.orderId); // WeChat took it
    const refusing: PaymentGateway = { ...stack.app.gateways.wechat, refund: async () => ({ state: 'failed', reason: 'INVALID_REQUEST' }) };
    const lostAnswer = { ...refund, accepted: false }; // as if the answer to the first call had been lost
    const withRefusals = { ...deps, gateways: { ...deps.gateways, wechat: refusing } };
    expect(await followUpRefund(withRefusals, lostAnswer)).toBe('pending');
    expect(await stack.app.store.getRefund(`${outTradeNo}R1`)).toMatchObject({ status: 'pending' });
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });

    // WeChat refunded this one but never said so: the table still has it pending when the refusal comes.
    const silent = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'silent');
    const pending = (await refundAsk(silent.user.orderId)).refund;
    await stack.gateway.refundsSettled();
    expect(await stack.app.store.getRefund(pending.outRefundNo)).toMatchObject({ status: 'pending' });
    expect(await followUpRefund(withRefusals, { ...pending, accepted: false })).toBe('recorded');
    expect(await state.order(silent.user.orderId)).toMatchObject({ status: 'refunded' });
  });
});

describe('a refund WeChat reports ABNORMAL: not final, its money waiting at WeChat until a person sends it on', () => {
  const abnormalLines = (lines: Record<string, unknown>[]) =>
    lines.filter((line) => line.message === 'refund abnormal at the gateway: a person must send it on');

  it('stays pending with its order refunding and no point back, tells a person once, refuses a second refund; sent on, it succeeds and the points come back once', async () => {
    const { user, outTradeNo } = await paidOrder(4);
    const R1 = `${outTradeNo}R1`;
    stack.gateway.failNextRefund('wechat', 'abnormal');
    await refundAsk(user.orderId);
    const told = await captureOutput(() => stack.gateway.refundsSettled()); // REFUND.ABNORMAL reaches /notify/wechat/refund
    expect(notify.received).toContainEqual({ path: '/notify/wechat/refund', status: 204, body: '' });
    expect(abnormalLines(told.lines)).toEqual([expect.objectContaining({ level: 'ERROR', out_refund_no: R1, order_id: user.orderId })]);
    expect(metricLines(told.lines, 'Refund')).toEqual([expect.objectContaining({ kind: 'order', outcome: 'abnormal' })]);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunding', refund: { out_refund_no: R1, status: 'pending' } });
    expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL', accepted: true });
    expect(await getPayStatus(deps, user.userId, user.orderId)).toMatchObject({ order_status: 'refunding', refund: { status: 'pending', refunded_at: null } });
    expect(await state.account(user.userId)).toMatchObject({ integral_spent: 800 });
    const report = await stack.reconcile();
    expect(report.abnormalRefunds).toEqual([expect.objectContaining({ outRefundNo: R1, reason: 'ABNORMAL' })]);
    expect(report.needsPerson).toContainEqual(expect.stringContaining(`refund ${R1} (order ${user.orderId}): abnormal at WeChat`));
    expect(report.failedRefunds.map((r) => r.outRefundNo)).not.toContain(R1);

    // Asking again makes no second refund: its money is at WeChat already.
    expect(await rejection(refundAsk(user.orderId))).toMatchObject({ code: 'REFUND_IN_PROGRESS', message: expect.stringContaining(R1) });
    // The sweeper's follow-up finds it ABNORMAL still: pending, and the person is not told again.
    const followed = await captureOutput(() => sweep(2 * MINUTE, { store: dueOnly(R1) }));
    expect(followed.result).toMatchObject({ refunds_pending: 1, refunds_settled: 0 });
    expect(abnormalLines(followed.lines)).toEqual([]);
    expect(metricLines(followed.lines, 'Refund')).toEqual([]);
    expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });

    // A person sends it on in the merchant platform (发起异常退款): the same refund succeeds and WeChat notifies.
    stack.gateway.resumeAbnormalRefund(R1);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded', refund: { out_refund_no: R1, status: 'succeeded' } });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ outRefundNo: R1, amountFen: 8000, status: 'SUCCESS' })]);
    expect((await stack.reconcile()).abnormalRefunds).toEqual([]);
  });

  it("found ABNORMAL in the refund call's own answer, it tells a person there; the notification that follows does not tell again", async () => {
    stack.gateway.refundSettings({ wechatMode: 'immediate' });
    const { user, outTradeNo } = await paidOrder(1);
    const R1 = `${outTradeNo}R1`;
    stack.gateway.failNextRefund('wechat', 'abnormal');
    const asked = await captureOutput(() => refundAsk(user.orderId));
    expect(asked.result.refund).toMatchObject({ outRefundNo: R1, status: 'pending', lastError: 'ABNORMAL' });
    expect(abnormalLines(asked.lines)).toEqual([expect.objectContaining({ out_refund_no: R1 })]);
    const notified = await captureOutput(() => stack.gateway.refundsSettled());
    expect(notify.received).toContainEqual({ path: '/notify/wechat/refund', status: 204, body: '' });
    expect(abnormalLines(notified.lines)).toEqual([]);
    expect(metricLines(notified.lines, 'Refund')).toEqual([]);
    expect(await stack.app.store.getRefund(R1)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });
    stack.gateway.resumeAbnormalRefund(R1);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
  });

  it('a refusal of the refund call is not believed while the query says ABNORMAL (an earlier call went through); a stale copy marks nothing twice', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'abnormal');
    const { refund } = await refundAsk(user.orderId); // WeChat took it: PROCESSING, then ABNORMAL
    await stack.gateway.refundsSettled();
    const refusing: PaymentGateway = { ...stack.app.gateways.wechat, refund: async () => ({ state: 'failed', reason: 'INVALID_REQUEST' }) };
    const withRefusals = { ...deps, gateways: { ...deps.gateways, wechat: refusing } };
    // As read now (the notification marked it ABNORMAL), as if the answer to the first call had been lost.
    const lostAnswer = { ...((await stack.app.store.getRefund(refund.outRefundNo)) as Refund), accepted: false };
    expect(await followUpRefund(withRefusals, lostAnswer)).toBe('pending');
    expect(await stack.app.store.getRefund(refund.outRefundNo)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });
    // The same copy again: its follow-up was taken already; nobody is told a second time.
    const again = await captureOutput(() => followUpRefund(withRefusals, lostAnswer));
    expect(again.result).toBe('moved_on');
    expect(again.lines.filter((line) => line.message === 'refund moved on during its follow-up')).toEqual([
      expect.objectContaining({ out_refund_no: refund.outRefundNo }),
    ]);
    expect(abnormalLines(again.lines)).toEqual([]);
    expect(metricLines(again.lines, 'Refund')).toEqual([]);
    stack.gateway.resumeAbnormalRefund(refund.outRefundNo);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded' });
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('reported ABNORMAL for a copy whose first call seemed lost (not accepted): marked taken by the gateway, so its follow-up asks the query before it sends', async () => {
    const { user } = await paidOrder(1);
    const refusing: PaymentGateway = {
      ...stack.app.gateways.wechat,
      refund: async () => {
        throw new GatewayError('wechat refund: timeout');
      },
    };
    const { refund } = await requestRefund({ ...deps, gateways: { ...deps.gateways, wechat: refusing } }, { orderId: user.orderId, reason: '用户取消订单' });
    expect(refund).toMatchObject({ status: 'pending', accepted: false });
    expect(await recordRefundAbnormal(deps, (await stack.app.store.getRefund(refund.outRefundNo)) as Refund)).toBe(true);
    expect(await stack.app.store.getRefund(refund.outRefundNo)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL', accepted: true });
    // Put right for the books: the refund is sent (and settles) as the sweeper would.
    await followUpRefund(deps, (await stack.app.store.getRefund(refund.outRefundNo)) as Refund);
    await stack.gateway.refundsSettled();
  });

  it('a follow-up the gateway fails keeps it marked ABNORMAL: still listed for a person, and not told again at the next look', async () => {
    const { user } = await paidOrder(1);
    stack.gateway.failNextRefund('wechat', 'abnormal');
    const { refund } = await refundAsk(user.orderId);
    await stack.gateway.refundsSettled();
    const failing: PaymentGateway = {
      ...stack.app.gateways.wechat,
      queryRefund: async () => {
        throw new GatewayError('wechat refund query failed: HTTP 503');
      },
    };
    const marked = (await stack.app.store.getRefund(refund.outRefundNo)) as Refund;
    expect(await followUpRefund({ ...deps, gateways: { ...deps.gateways, wechat: failing } }, marked)).toBe('pending');
    expect(await stack.app.store.getRefund(refund.outRefundNo)).toMatchObject({ status: 'pending', lastError: 'ABNORMAL' });
    expect((await stack.reconcile()).abnormalRefunds).toEqual([expect.objectContaining({ outRefundNo: refund.outRefundNo })]);
    // The next look answers ABNORMAL again: nothing new for the person.
    const next = await captureOutput(async () => followUpRefund(deps, (await stack.app.store.getRefund(refund.outRefundNo)) as Refund));
    expect(next.result).toBe('pending');
    expect(abnormalLines(next.lines)).toEqual([]);
    expect(metricLines(next.lines, 'Refund')).toEqual([]);
  });

  it('a REFUND.ABNORMAL that arrives after the refund succeeded (out of order) changes nothing and is acknowledged', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    await refundAsk(user.orderId);
    await stack.gateway.refundsSettled();
    const refund = (await stack.app.store.getRefund(`${outTradeNo}R1`)) as Refund;
    expect(refund).toMatchObject({ status: 'succeeded' });
    const before = await state.snapshot();
    const [sandboxRefund] = stack.gateway.refunds(outTradeNo);
    const late = buildRefundNotification(stack.gateway.trade(outTradeNo)!, { ...sandboxRefund, status: 'ABNORMAL' }, stack.credentials);
    const { lines, result } = await captureOutput(() => fetch(`${sandboxRefund.notifyUrl}`, { method: 'POST', headers: late.headers, body: late.body }));
    expect(result.status).toBe(204);
    // Accepted as genuine and about this refund (not refused as malformed), and nothing more.
    expect(metricLines(lines, 'NotificationAccepted')).toEqual([expect.objectContaining({ channel: 'wechat' })]);
    expect(abnormalLines(lines)).toEqual([]);
    expect(lines.filter((line) => line.message === 'refund moved on during its follow-up')).toEqual([]);
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('refunds that finally fail', () => {
  it('WeChat: a payment more than a year old is refused before anything is written', async () => {
    const { user, outTradeNo } = await paidOrder(1);
    const yearAgo = await paidAYearAgo(outTradeNo);
    stack.gateway.backdatePayment(outTradeNo, new Date(yearAgo));
    const before = await state.snapshot();
    const error = await rejection(refundAsk(user.orderId));
    expect(error).toMatchObject({ code: 'REFUND_WINDOW_CLOSED', message: expect.stringContaining(`支付于${yearAgo}`) });
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('Alipay: a finished trade is refused by Alipay; the refund is kept as failed and the order stays paid', async () => {
    const { user, outTradeNo } = await paidOrder(2);
    stack.gateway.finishAlipayTrade(outTradeNo);
    const error = await rejection(requestRefund(deps, { orderId: user.orderId, reason: '用户取消订单' }));
    expect({ code: error.code, message: error.message }).toEqual({
      code: 'REFUND_WINDOW_CLOSED',
      message: expect.stringMatching(/TRADE_HAS_FINISHED|TRADE_FINISHED/),
    });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', refund: { status: 'failed' } });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);

    // A person pays the user back outside the gateways and notes it: no refund may follow, nothing is sent.
    const failed = (await stack.app.store.getAttempt(outTradeNo))!.refundNo as string;
    expect(await stack.app.store.markHandled({ outRefundNo: failed }, '已通过银行转账退款', new Date().toISOString())).toBe(true);
    const before = await state.snapshot();
    const handled = await rejection(requestRefund(deps, { orderId: user.orderId, reason: '用户取消订单' }));
    expect({ code: handled.code, message: handled.message }).toEqual({
      code: 'REFUND_HANDLED',
      message: `这笔支付的退款已由人工在支付渠道之外处理,不再原路退款;如已线下退款,请用 repaid_outside 记录(${failed}: 已通过银行转账退款)`,
    });
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
    // Should Alipay pay it after all, the person reading the contradiction learns it was noted handled.
    const late = await captureOutput(() => recordRefundResult(deps, failed, { state: 'succeeded' }));
    expect(late.lines.filter((line) => line.level === 'ERROR')).toEqual([
      expect.objectContaining({ message: 'refund result contradicts the recorded one', out_refund_no: failed, handled: true }),
    ]);
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('refunds repaid outside the gateways (recorded by a person)', () => {
  const REPAID = '2026-12-01 工商银行转账 流水号 88123';
  const outsideAsk = (orderId: number, over: { outTradeNo?: string } = {}) =>
    requestRefund(deps, { orderId, reason: '退款期已过', repaidOutside: REPAID, ...over });
  const eventsOf = async (orderId: number) =>
    (await stack.app.store.findPendingEvents(eventShard(orderId), 500)).events.map((e) => e.event).filter((e) => e.data.order_id === orderId);

  /** An Alipay + points order whose refund Alipay refused for good: the trade is past its refund period. */
  async function refusedForWindow() {
    const paid = await paidOrder(5);
    stack.gateway.finishAlipayTrade(paid.outTradeNo);
    expect(await refused(refundAsk(paid.user.orderId))).toBe('REFUND_WINDOW_CLOSED');
    expect(await state.account(paid.user.userId)).toMatchObject({ integral_available: 200, integral_spent: 800 });
    return paid;
  }

  it('after the gateway refused for good: the order refunded, the points back once, the shop told it went outside; nothing sent to a gateway', async () => {
    const { user, outTradeNo } = await refusedForWindow();
    const { result, lines } = await captureOutput(() => outsideAsk(user.orderId));
    expect(result.order).toMatchObject({ status: 'refunded', refund: { outRefundNo: `${outTradeNo}R2`, status: 'succeeded' } });
    expect(result.refund).toMatchObject({ outRefundNo: `${outTradeNo}R2`, status: 'succeeded', cashFen: 8000, points: 800, repaidOutside: REPAID });
    expect(await stack.app.store.getRefund(`${outTradeNo}R1`)).toMatchObject({ status: 'failed' }); // its history stays true
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refunded', refund_no: `${outTradeNo}R2` });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'refund')).toEqual([expect.objectContaining({ points: 800 })]);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
    const refunded = (await eventsOf(user.orderId)).filter((e) => e.type === 'order.refunded');
    expect(refunded).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ out_refund_no: `${outTradeNo}R2`, refund_price: '80.00', refund_integral: 800, repaid_outside: true }),
      }),
    ]);
    // Told and counted as a refund that succeeded; the lines say it went outside, and never carry the person's note.
    expect(metricLines(lines, 'Refund').map((line) => line.outcome)).toEqual(['requested', 'succeeded']);
    expect(lines.filter((line) => line.message === 'refund succeeded')).toEqual([
      expect.objectContaining({ out_refund_no: `${outTradeNo}R2`, repaid_outside: true }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('流水号');
    expect(await getPayStatus(deps, user.userId, user.orderId)).toMatchObject({
      order_status: 'refunded',
      refund: { status: 'succeeded', refund_price: '80.00', refund_integral: 800 },
    });
    const report = await stack.reconcile();
    expect(report.problems).toEqual([]);
    expect(report.info).toContainEqual(expect.stringMatching(/^repaid outside the gateways: \d+ refunds?, \d+\.\d\d yuan/));
    expect(report.failedRefunds.map((r) => r.outRefundNo)).not.toContain(`${outTradeNo}R1`); // superseded by the repayment

    // Asked again, either way: the refund that was recorded, nothing more written, sent or given back.
    const before = await state.snapshot();
    expect(await outsideAsk(user.orderId)).toMatchObject({ refund: { outRefundNo: `${outTradeNo}R2` } });
    expect(await refundAsk(user.orderId)).toMatchObject({ refund: { outRefundNo: `${outTradeNo}R2` } });
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('reconcile lists them, and only them, with their number and yuan total', async () => {
    /** The information line's figures; none when no refund was repaid outside. */
    const repaidOutside = async () => {
      const line = (await stack.reconcile()).info.find((l) => l.startsWith('repaid outside the gateways'));
      const [, refunds = '0', yuan = '0.00'] = line?.match(/^repaid outside the gateways: (\d+) refunds?, (\d+\.\d\d) yuan/) ?? [];
      return { refunds: Number(refunds), fen: Math.round(Number(yuan) * 100) };
    };
    const before = await repaidOutside();
    const { user } = await refusedForWindow(); // a refund that failed at Alipay: 80.00
    await refundAsk((await paidOrder(1)).user.orderId); // one on its way at WeChat: 88.00
    await outsideAsk(user.orderId); // repaid outside: 80.00
    expect(await repaidOutside()).toEqual({ refunds: before.refunds + 1, fen: before.fen + 8000 });
  });

  it('after a person noted the failed refund handled: the repayment can still be recorded, once', async () => {
    const { user, outTradeNo } = await refusedForWindow();
    expect(await stack.app.store.markHandled({ outRefundNo: `${outTradeNo}R1` }, '已通过银行转账退款', new Date().toISOString())).toBe(true);
    expect(await refused(refundAsk(user.orderId))).toBe('REFUND_HANDLED');
    const answers = await Promise.all([outsideAsk(user.orderId), outsideAsk(user.orderId)]);
    expect(answers.map((a) => a.refund.outRefundNo)).toEqual([`${outTradeNo}R2`, `${outTradeNo}R2`]);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'refund')).toHaveLength(1);
    expect((await eventsOf(user.orderId)).filter((e) => e.type === 'order.refunded')).toHaveLength(1);
  });

  it('WeChat, a payment more than a year old: the gateway is not asked; recorded as repaid, the points back', async () => {
    const { user, outTradeNo } = await paidOrder(4);
    await paidAYearAgo(outTradeNo);
    expect(await refused(refundAsk(user.orderId))).toBe('REFUND_WINDOW_CLOSED');
    expect(await outsideAsk(user.orderId)).toMatchObject({
      order: { status: 'refunded' },
      refund: { outRefundNo: `${outTradeNo}R1`, status: 'succeeded', repaidOutside: REPAID },
    });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
    expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
  });

  it("refused while a refund is pending at the gateway (it could still pay too), changing nothing; the gateway's refund then gives the points back once", async () => {
    const { user, outTradeNo } = await paidOrder(4);
    await refundAsk(user.orderId); // WeChat takes it and settles later
    const before = await state.snapshot();
    expect(await refused(outsideAsk(user.orderId))).toBe('REFUND_IN_PROGRESS');
    expect(await state.snapshot()).toEqual(before);
    await stack.gateway.refundsSettled();
    expect(await state.order(user.orderId)).toMatchObject({ status: 'refunded', refund: { out_refund_no: `${outTradeNo}R1` } });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_spent: 0 });
  });

  it('refused once the payment was refunded through its gateway (the payer would have the cash twice), naming that refund, changing nothing', async () => {
    const { user, outTradeNo } = await paidOrder(5); // Alipay refunds at once
    await refundAsk(user.orderId);
    await stack.gateway.refundsSettled();
    const before = await state.snapshot();
    const error = await rejection(outsideAsk(user.orderId));
    expect({ code: error.code, message: error.message }).toEqual({
      code: 'ALREADY_REFUNDED',
      message: `这笔支付已经原路退款成功,不能再记录线下退款;如又线下退了一次,付款人已收到两次退款(${outTradeNo}R1)`,
    });
    expect(await state.snapshot()).toEqual(before);
  });

  /** A WeChat + points order whose refund WeChat reported ABNORMAL, recorded failed as the code of before 2026-11-30 did. */
  async function failedAbnormalByOldCode() {
    const paid = await paidOrder(4);
    stack.gateway.failNextRefund('wechat', 'abnormal');
    await refundAsk(paid.user.orderId);
    await stack.gateway.refundsSettled();
    await stack.app.store.failRefund((await stack.app.store.getRefund(`${paid.outTradeNo}R1`)) as Refund, 'ABNORMAL', new Date().toISOString());
    return paid;
  }

  it('refused while a refund recorded failed as ABNORMAL by the code of before waits for the migration (its money may still be at WeChat), changing nothing', async () => {
    const { user, outTradeNo } = await failedAbnormalByOldCode();
    const before = await state.snapshot();
    const error = await rejection(outsideAsk(user.orderId));
    expect({ code: error.code, message: error.message }).toEqual({
      code: 'REFUND_IN_PROGRESS',
      message: `退款正在处理中,请勿重复申请(${outTradeNo}R1: ABNORMAL, npm run migrate:abnormal-refunds)`,
    });
    expect(await state.snapshot()).toEqual(before);
  });

  it('recorded for such a refund once a person noted it handled (the migration leaves it alone): refunded, the points back once', async () => {
    const { user, outTradeNo } = await failedAbnormalByOldCode();
    expect(await stack.app.store.markHandled({ outRefundNo: `${outTradeNo}R1` }, '已在微信商户平台转入他人账户', new Date().toISOString())).toBe(true);
    expect(await outsideAsk(user.orderId)).toMatchObject({
      order: { status: 'refunded' },
      refund: { outRefundNo: `${outTradeNo}R2`, status: 'succeeded', repaidOutside: REPAID },
    });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'refund')).toHaveLength(1);
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1); // the ABNORMAL one only
  });

  it('a refund recorded failed that its gateway pays after all (README RefundContradicted): nothing changes by itself; recorded so, refunded with the points back once', async () => {
    const { user, outTradeNo } = await refusedForWindow();
    const told = await captureOutput(() => recordRefundResult(deps, `${outTradeNo}R1`, { state: 'succeeded' }));
    expect(told.lines.filter((line) => line.level === 'ERROR')).toEqual([
      expect.objectContaining({ message: 'refund result contradicts the recorded one', recorded: 'failed', reported: 'succeeded', handled: false }),
    ]);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid' });
    const answer = await requestRefund(deps, { orderId: user.orderId, reason: '退款', repaidOutside: `${outTradeNo}R1 paid by Alipay after all` });
    expect(answer).toMatchObject({ order: { status: 'refunded' }, refund: { outRefundNo: `${outTradeNo}R2`, status: 'succeeded' } });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'refund')).toHaveLength(1);
  });

  it('a refund recorded failed that its gateway pays after all, once the payment was repaid outside: nothing changes, and a person is told the payer has the cash twice', async () => {
    const { user, outTradeNo } = await refusedForWindow();
    await outsideAsk(user.orderId);
    const before = await state.snapshot();
    const { result, lines } = await captureOutput(() => recordRefundResult(deps, `${outTradeNo}R1`, { state: 'succeeded' }));
    expect(result).toBe('duplicate');
    expect(lines.filter((line) => line.level === 'ERROR')).toEqual([
      expect.objectContaining({
        message: 'refund paid by its gateway after the payment was repaid outside: the payer has the cash twice',
        out_refund_no: `${outTradeNo}R1`,
        repaid_outside_refund: `${outTradeNo}R2`,
        cash_fen: 8000,
      }),
    ]);
    expect(metricLines(lines, 'Refund')).toEqual([expect.objectContaining({ outcome: 'contradicted', kind: 'order' })]);
    expect(await state.snapshot()).toEqual(before);
    // A failure reported for the refund repaid outside is an ordinary contradiction.
    const other = await captureOutput(() => recordRefundResult(deps, `${outTradeNo}R2`, { state: 'failed', reason: 'x' }));
    expect(other.lines.filter((line) => line.level === 'ERROR')).toEqual([
      expect.objectContaining({
        message: 'refund result contradicts the recorded one',
        out_refund_no: `${outTradeNo}R2`,
        recorded: 'succeeded',
        reported: 'failed',
      }),
    ]);
  });

  it('refused for a payment without cash (points only: refund it as usual), changing nothing', async () => {
    const { user } = await paidOrder(3);
    const before = await state.snapshot();
    const error = await rejection(outsideAsk(user.orderId));
    expect({ code: error.code, message: error.message }).toEqual({ code: 'NO_CASH_PAID', message: '这笔支付没有现金部分,无需记录线下退款,请直接申请退款' });
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('refund cases (money the order could not take)', () => {
  /** A second payment: the order is paid by its first attempt, the second attempt's money is a refund case. */
  async function secondPayment(over: Partial<CompletePaymentDeps> = {}) {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 });
    expect(await completePayment({ ...deps, ...over }, gatewayPayment(first.outTradeNo, 'wechat'))).toBe('paid');
    if (typeof (second as { payParam?: unknown }).payParam === 'string') stack.gateway.registerAlipayOrder((second as { payParam: string }).payParam);
    stack.gateway.pay(second.outTradeNo);
    const { result, lines } = await captureOutput(() => completePayment({ ...deps, ...over }, gatewayPayment(second.outTradeNo, 'alipay')));
    expect(result).toBe('refund_required');
    return { user, first, second, lines };
  }

  it('are refunded automatically by the next sweep; the paid order is untouched', async () => {
    const { user, second, lines } = await secondPayment();
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'refund_required', refund_no: `${second.outTradeNo}R1` });
    // The reason the payer is shown by the gateway, and the count an operator watches.
    expect(await stack.app.store.getRefund(`${second.outTradeNo}R1`)).toMatchObject({ reason: '订单无法接受这笔付款(重复或过期支付),原路退回' });
    expect(metricLines(lines, 'Refund')).toEqual([expect.objectContaining({ kind: 'duplicate', outcome: 'requested' })]);
    expect(await sweep()).toMatchObject({ refunds_settled: 1 });
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'refunded' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid' });
    expect((await state.order(user.orderId))?.refund).toBeUndefined();
    expect((await getPayStatus(deps, user.userId, user.orderId)).refund).toBeNull();
    expect(stack.gateway.refunds(second.outTradeNo)).toEqual([expect.objectContaining({ amountFen: 8800, status: 'SUCCESS' })]);
    expect((await stack.reconcile()).refunds.map((r) => r.outTradeNo)).not.toContain(second.outTradeNo);
  });

  it('with automatic refunds off, wait for an operator, who refunds the case by its out_trade_no', async () => {
    const { user, second, lines } = await secondPayment({ autoRefundDuplicates: false });
    expect(await state.attempt(second.outTradeNo)).not.toHaveProperty('refund_no');
    expect(metricLines(lines, 'Refund')).toEqual([]);
    expect(metricLines(lines, 'Completion')).toEqual([expect.objectContaining({ outcome: 'refund_required' })]);
    expect((await stack.reconcile()).refunds).toContainEqual(expect.objectContaining({ outTradeNo: second.outTradeNo, refundNo: undefined }));
    expect(await refundAsk(user.orderId, { outTradeNo: second.outTradeNo })).toMatchObject({
      order: { status: 'paid' },
      refund: { kind: 'duplicate', status: 'succeeded', cashFen: 8800, points: 0 },
    });
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'refunded' });
  });

  it('repaid outside the gateways (recorded by a person): its payment refunded, no point moves, nothing sent, the paid order untouched', async () => {
    const { user, second } = await secondPayment({ autoRefundDuplicates: false });
    const account = await state.account(user.userId);
    const answer = await requestRefund(deps, { orderId: user.orderId, reason: '重复支付', outTradeNo: second.outTradeNo, repaidOutside: '支付宝转账退回' });
    expect(answer).toMatchObject({
      order: { status: 'paid' },
      refund: { kind: 'duplicate', status: 'succeeded', cashFen: 8800, points: 0, repaidOutside: '支付宝转账退回' },
    });
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'refunded' });
    expect(await state.account(user.userId)).toEqual(account);
    expect(stack.gateway.refunds(second.outTradeNo)).toEqual([]);
    expect((await stack.reconcile()).refunds.map((r) => r.outTradeNo)).not.toContain(second.outTradeNo);
  });

  it('asked about while its refund is pending: REFUND_IN_PROGRESS with its number; once refunded: that refund again, nothing sent twice', async () => {
    const { user, second } = await secondPayment();
    const outRefundNo = `${second.outTradeNo}R1`;
    const before = await state.snapshot();
    const error = await rejection(refundAsk(user.orderId, { outTradeNo: second.outTradeNo }));
    expect(error).toMatchObject({ code: 'REFUND_IN_PROGRESS', message: expect.stringContaining(outRefundNo) });
    expect(await state.snapshot()).toEqual(before);
    await sweep();
    const refunded = await state.snapshot();
    expect(await refundAsk(user.orderId, { outTradeNo: second.outTradeNo })).toMatchObject({
      order: { status: 'paid' },
      refund: { outRefundNo, kind: 'duplicate', status: 'succeeded' },
    });
    expect(await state.snapshot()).toEqual(refunded);
    expect(stack.gateway.refunds(second.outTradeNo)).toHaveLength(1);
  });

  it('a payment reported again after its refund is a duplicate, never a new refund case', async () => {
    const { second } = await secondPayment();
    await sweep();
    const before = await state.snapshot();
    const again = { channel: 'alipay' as const, outTradeNo: second.outTradeNo, transactionId: `t-${second.outTradeNo}`, amountFen: 8800, paidAt: 'x' };
    expect(await completePayment(deps, again)).toBe('duplicate');
    expect(await state.snapshot()).toEqual(before);
  });
});

/** The refund notify URL of this stack, as WeChat is given it with every refund. */
function notifyUrlOf(): string {
  return `${stack.env.NOTIFY_BASE_URL}/notify/wechat/refund`;
}
