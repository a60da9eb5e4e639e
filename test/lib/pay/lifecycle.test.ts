import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { GatewayPayment } from '../../../lib/domain/model';
import type { PaymentGateway } from '../../../lib/gateways/paymentGateway';
import { logger } from '../../../lib/log';
import { type CompletePaymentDeps, completePayment } from '../../../lib/pay/completePayment';
import { beforeEachCall } from '../../../lib/pay/gatewayRateLimit';
import { getPayStatus } from '../../../lib/pay/payStatus';
import { DEFAULT_SWEEP, sweep as sweepDue } from '../../../lib/pay/sweep';
import { keys } from '../../../lib/store/keys';
import { captureOutput, metricLines } from '../../support/logs';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { gatewayPayment, givenUser, paidWhileClosing, pay, payDeps, storeWith } from '../../support/world';

/** The attempt lifecycle: late payments, the sweeper, races between them, and crashes between steps. */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let deps: CompletePaymentDeps;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  deps = { store: stack.app.store, gateways: stack.app.gateways };
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

const MINUTE = 60_000;
const sweepAt = (ms: number, over: Partial<CompletePaymentDeps> = {}, concurrency = DEFAULT_SWEEP.concurrency) =>
  sweepDue({ ...deps, ...over, now: () => new Date(Date.now() + ms) }, { ...DEFAULT_SWEEP, concurrency });

/** The shop closes the order in its own system (as it did before paynow took commands). */
async function closeOrderByHand(orderId: number) {
  await stack.db.send(
    new UpdateCommand({
      TableName: TABLE,
      Key: keys.order(orderId),
      UpdateExpression: 'SET #s = :closed REMOVE open_attempt',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':closed': 'closed' },
    }),
  );
}

/** Back to a clean, unpaid order so reconcile's books stay consistent for the suite. */
async function reopenOrder(user: { userId: number; orderId: number }) {
  await stack.seed({
    users: [{ user_id: user.userId, integral: 0, tokens: [] }],
    orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
  });
}

/** The payment the sandbox now reports for a trade it was told to pay. */
function paymentOf(outTradeNo: string): GatewayPayment {
  const { channel, transactionId, amountFen } = stack.gateway.pay(outTradeNo);
  return { channel, outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() };
}

describe('payments that arrive where no one expects them', () => {
  it('a superseded attempt paid late pays the order, and the newer attempt is closed and released', async () => {
    const user = await givenUser(stack, 1000);
    const old = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const newer = await pay(stack, user, { method: 5, points: 300, priceFen: 8500 });
    // The user had the old pay sheet open and paid it after all: WeChat closed it, yet the money came.
    const trade = stack.gateway.trade(old.outTradeNo);
    expect(trade?.status).toBe('CLOSED');
    const late: GatewayPayment = {
      channel: 'wechat',
      outTradeNo: old.outTradeNo,
      transactionId: '4200000000000001',
      amountFen: 8000,
      paidAt: new Date().toISOString(),
    };
    expect(await completePayment(deps, late)).toBe('paid');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: old.outTradeNo });
    expect(await state.attempt(old.outTradeNo)).toMatchObject({ status: 'paid', transaction_id: '4200000000000001' });
    expect(await state.attempt(newer.outTradeNo)).toMatchObject({ status: 'superseded' });
    // 800 held, released, held 300 for the newer one, released, 800 spent again: 200 left
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
  });

  it("a late payment's writes are stamped once the order's other attempt is closed: its event sorts after anything written meanwhile", async () => {
    const user = await givenUser(stack, 0);
    const old = await pay(stack, user, { method: 1 });
    const newer = await pay(stack, user, { method: 2 });
    if (newer.outcome === 'pay_param') stack.gateway.registerAlipayOrder(String(newer.payParam));
    // Each gateway call (the query and the close of the newer attempt) takes 5 s on this clock.
    let clock = Date.now();
    const slow = beforeEachCall(stack.app.gateways, () => void (clock += 5_000));
    const before = clock;
    expect(await completePayment({ ...deps, gateways: slow, now: () => new Date(clock) }, gatewayPayment(old.outTradeNo))).toBe('paid');
    expect(clock).toBe(before + 10_000);
    const paid = await stack.app.store.getEvent(`evt_order_paid_${old.outTradeNo}`);
    expect(paid?.event.created_at).toBe(new Date(before + 10_000).toISOString());
    expect(await state.attempt(newer.outTradeNo)).toMatchObject({ status: 'superseded', updated_at: new Date(before + 10_000).toISOString() });
  });

  it('a released (expired) attempt paid late pays the unpaid order if the points are still there', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    expect(await sweepAt(31 * MINUTE)).toMatchObject({ released: 1 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    expect(await completePayment(deps, { channel: 'wechat', outTradeNo: attempt.outTradeNo, transactionId: 't-late', amountFen: 8000, paidAt: 'x' })).toBe(
      'paid',
    );
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: attempt.outTradeNo });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
  });

  it('an Alipay order string released by a switch whose WeChat prepay failed, paid afterwards, pays the order: it had no trade to close', async () => {
    const user = await givenUser(stack, 1000);
    const old = await pay(stack, user, { method: 5, points: 300, priceFen: 8500 });
    stack.gateway.failNext('wechat.prepay', 1, '500');
    await expect(pay(stack, user, { method: 4, points: 800, priceFen: 8000 })).rejects.toMatchObject({ code: 'GATEWAY_ERROR' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
    // The user still had the order string and opened it: Alipay creates the trade then.
    stack.gateway.registerAlipayOrder(old.outcome === 'pay_param' ? String(old.payParam) : '');
    expect(await completePayment(deps, paymentOf(old.outTradeNo))).toBe('paid');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: old.outTradeNo });
    expect(await state.attempt(old.outTradeNo)).toMatchObject({ status: 'paid' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 700, integral_held: 0, integral_spent: 300 });
  });

  it('a superseded attempt of a user with no points account, paid late, pays the order (no points to hold, none needed)', async () => {
    const userId = 930_000;
    await stack.seed({
      addresses: [{ address_id: userId + 1, user_id: userId, name: '张三', phone: '13800000000', province: 'p', city: 'c', district: 'd', detail: 'x' }],
      orders: [{ order_id: userId + 2, user_id: userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }],
    });
    const user = { userId, token: '', addressId: userId + 1, orderId: userId + 2, orderIds: [userId + 2] };
    const old = await pay(stack, user, { method: 2 });
    const newer = await pay(stack, user, { method: 1 });
    expect(await completePayment(deps, gatewayPayment(old.outTradeNo, 'alipay'))).toBe('paid');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: old.outTradeNo });
    expect(await state.attempt(newer.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await stack.app.store.getAccount(userId)).toBeUndefined();
  });

  it('when the points are gone meanwhile, the late payment is kept as refund_required and the order is left alone', async () => {
    const user = await givenUser(stack, 1000, ['88.00', '9.00']);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await sweepAt(31 * MINUTE);
    // the released points pay another order
    await pay(stack, { ...user, orderId: user.orderIds[1] }, { method: 3, points: 900, priceFen: 0 });
    const before = await state.account(user.userId);
    expect(await completePayment(deps, { channel: 'wechat', outTradeNo: attempt.outTradeNo, transactionId: 't-refund', amountFen: 8000, paidAt: 'x' })).toBe(
      'refund_required',
    );
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'refund_required', transaction_id: 't-refund' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
    expect(await state.account(user.userId)).toEqual(before);
    const report = await stack.reconcile();
    expect(report.refunds).toContainEqual(expect.objectContaining({ outTradeNo: attempt.outTradeNo, cashFen: 8000, transactionId: 't-refund' }));
  });

  it('a second successful payment for a paid order is refund_required; its duplicate too', async () => {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 }); // supersedes the first
    // the first pay sheet was paid after all: it takes the order
    const secondPayment: GatewayPayment = { channel: 'alipay', outTradeNo: second.outTradeNo, transactionId: '2026-second', amountFen: 8800, paidAt: 'x' };
    const { lines } = await captureOutput(async () => {
      expect(await completePayment(deps, { channel: 'wechat', outTradeNo: first.outTradeNo, transactionId: '4200-first', amountFen: 8800, paidAt: 'x' })).toBe(
        'paid',
      );
      expect(await completePayment(deps, secondPayment)).toBe('refund_required');
      expect(await completePayment(deps, secondPayment)).toBe('duplicate');
    });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: first.outTradeNo });
    // What the operators see: the refund case alarms (Completion outcome=refund_required), with a log line to follow.
    expect(metricLines(lines, 'Completion').map((line) => line.outcome)).toEqual(['paid_late', 'refund_required', 'duplicate']);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'payment needs a refund',
        out_trade_no: second.outTradeNo,
        order_id: user.orderId,
        repriced: false,
        order_status: 'paid',
        attempt_status: 'superseded',
        out_refund_no: `${second.outTradeNo}R1`,
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'order paid by a released attempt',
        out_trade_no: first.outTradeNo,
        order_id: user.orderId,
        superseded: second.outTradeNo,
      }),
    );
  });

  it('a payment captured says so in one line, naming its attempt and order', async () => {
    const user = await givenUser(stack, 0);
    const opened = await pay(stack, user, { method: 1 });
    logger.resetKeys(); // the pay bound its out_trade_no to the logger: the line must name it itself
    const { result, lines } = await captureOutput(() => completePayment(deps, paymentOf(opened.outTradeNo)));
    expect(result).toBe('paid');
    expect(lines.filter((line) => line.level)).toEqual([
      expect.objectContaining({ level: 'INFO', message: 'payment captured', out_trade_no: opened.outTradeNo, order_id: user.orderId }),
    ]);
  });

  it('if the order is paying with another attempt that turns out paid too, that one keeps the order', async () => {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 2 });
    const second = await pay(stack, user, { method: 1 });
    stack.gateway.pay(second.outTradeNo);
    const late: GatewayPayment = { channel: 'alipay', outTradeNo: first.outTradeNo, transactionId: '2026-first', amountFen: 8800, paidAt: 'x' };
    expect(await completePayment(deps, late)).toBe('refund_required');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: second.outTradeNo } });
    expect(await sweepAt(3 * MINUTE)).toMatchObject({ paid: 1 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: second.outTradeNo });
  });

  it('and when the other attempt is paid between the query and the close (the close refused as paid), that one keeps the order too', async () => {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 2 });
    const second = await pay(stack, user, { method: 1 });
    const late: GatewayPayment = { channel: 'alipay', outTradeNo: first.outTradeNo, transactionId: '2026-first-b', amountFen: 8800, paidAt: 'x' };
    expect(await completePayment({ ...deps, gateways: { ...deps.gateways, wechat: paidWhileClosing(stack) } }, late)).toBe('refund_required');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: second.outTradeNo } });
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open' });
    expect(await sweepAt(3 * MINUTE)).toMatchObject({ paid: 1 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: second.outTradeNo });
  });

  it('a payment whose amount or channel differs from the attempt changes nothing', async () => {
    const user = await givenUser(stack, 0);
    const attempt = await pay(stack, user, { method: 1 });
    const before = await state.snapshot();
    expect(await completePayment(deps, { channel: 'wechat', outTradeNo: attempt.outTradeNo, transactionId: 't', amountFen: 8801, paidAt: 'x' })).toBe(
      'mismatch',
    );
    expect(await completePayment(deps, { channel: 'alipay', outTradeNo: attempt.outTradeNo, transactionId: 't', amountFen: 8800, paidAt: 'x' })).toBe(
      'mismatch',
    );
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('payments the order cannot take', () => {
  it('money for the open attempt of an order the shop closed meanwhile is a refund case, and its held points go back', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await closeOrderByHand(user.orderId);
    expect(await completePayment(deps, paymentOf(attempt.outTradeNo))).toBe('refund_required');
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'refund_required' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
    expect((await state.ledger(user.userId)).map((e) => e.kind).sort()).toEqual(['hold', 'release']);
    await reopenOrder(user);
  });

  it.each([
    ['the sweeper', async (over: Partial<CompletePaymentDeps>) => sweepAt(3 * MINUTE, over)],
    [
      'a status check',
      async (over: Partial<CompletePaymentDeps>, user?: { userId: number; orderId: number }) =>
        getPayStatus({ ...deps, ...over, now: () => new Date(Date.now() + 2 * MINUTE) }, user!.userId, user!.orderId),
    ],
  ])('a signed "paid" answer of another amount, found by %s, captures nothing', async (_title, ask) => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    // This user's items: the sweep may meanwhile follow up other tests' refunds in the same table. When
    // the attempt is next due is the sweeper's bookkeeping (a mismatch is asked about again after a backoff).
    const ofUser = async () =>
      (await state.snapshot()).filter((item) => item.user_id === user.userId).map(({ gsi1sk: _due, check_failures: _failures, ...item }) => item);
    const before = await ofUser();
    // What the gateway would sign for a trade paid at 1.00 instead of 80.00.
    const lying: PaymentGateway = {
      ...stack.app.gateways.wechat,
      queryTrade: async () => ({ state: 'paid', transactionId: '4200-other-amount', amountFen: 100, paidAt: '2026-11-29T10:00:00+08:00' }),
    };
    await ask({ gateways: { ...stack.app.gateways, wechat: lying } }, user);
    expect(await ofUser()).toEqual(before);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
  });
});

describe('released attempts are watched until their pay sheet can no longer be paid', () => {
  it('an Alipay order string paid after it was superseded, whose notification never came, is found and completed', async () => {
    const user = await givenUser(stack, 0);
    const alipay = (await pay(stack, user, { method: 2 })) as { outTradeNo: string; payParam: string };
    const wechat = await pay(stack, user, { method: 1 }); // Alipay never saw the order string: superseded at once
    expect(await state.attempt(alipay.outTradeNo)).toMatchObject({ status: 'superseded', gsi1pk: expect.stringMatching(/^DUE#/) });
    // the user had opened the old Alipay sheet and pays it; the notification is lost
    stack.gateway.registerAlipayOrder(alipay.payParam);
    stack.gateway.pay(alipay.outTradeNo);
    await sweepAt(3 * MINUTE); // not yet expired: the watch waits for its expiry
    expect(await state.attempt(alipay.outTradeNo)).toMatchObject({ status: 'superseded' });
    // The two attempts sit in different due shards, swept in shard order: either the WeChat attempt
    // expires first and gives the order back, or the Alipay payment found at the watch supersedes it
    // (closing it at WeChat). Either way the money pays the order and the WeChat attempt is released.
    await sweepAt(36 * MINUTE, {}, 1);
    expect(await state.attempt(alipay.outTradeNo)).toMatchObject({ status: 'paid' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: alipay.outTradeNo });
    expect(['expired', 'superseded']).toContain((await state.attempt(wechat.outTradeNo))?.status);
    expect(stack.gateway.trade(wechat.outTradeNo)?.status).toBe('CLOSED');
  });

  it('a released attempt confirmed unpaid after its expiry leaves the index', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await sweepAt(31 * MINUTE);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired', gsi1pk: expect.stringMatching(/^DUE#/) });
    await sweepAt(36 * MINUTE);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired' });
    expect(await state.attempt(attempt.outTradeNo)).not.toHaveProperty('gsi1pk');
  });

  it('a late payment does not supersede a WeChat attempt WeChat does not know yet (its prepay may be on the way); it is retried', async () => {
    // Only the code of before 2026-12-01 wrote an attempt before its prepay; while both run (a deploy), such an attempt is young.
    const user = await givenUser(stack, 0);
    const alipay = (await pay(stack, user, { method: 2 })) as { outTradeNo: string; payParam: string };
    const wechat = await pay(stack, user, { method: 1 });
    expect(await state.attempt(alipay.outTradeNo)).toMatchObject({ status: 'superseded' });
    stack.gateway.registerAlipayOrder(alipay.payParam);
    const late = { ...paymentOf(alipay.outTradeNo) };
    const unknownToWechat: PaymentGateway = { ...stack.app.gateways.wechat, queryTrade: async () => ({ state: 'not_found' }) };
    await expect(completePayment({ ...deps, gateways: { ...deps.gateways, wechat: unknownToWechat } }, late)).rejects.toThrow('still being created');
    expect(await state.attempt(wechat.outTradeNo)).toMatchObject({ status: 'open' });
    // the resent notification, WeChat knowing the trade now, closes the WeChat attempt and pays the order
    expect(await completePayment(deps, late)).toBe('paid');
    expect(stack.gateway.trade(wechat.outTradeNo)?.status).toBe('CLOSED');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: alipay.outTradeNo });
  });

  it("a late payment while a switch's WeChat prepay is on its way pays the order with the attempt it was for; the switch then loses its write, its WeChat order never recorded nor payable", async () => {
    const user = await givenUser(stack, 0);
    const alipay = (await pay(stack, user, { method: 2 })) as { outTradeNo: string; payParam: string };
    let land!: () => void;
    const landed = new Promise<void>((resolve) => (land = resolve));
    const prepaid: string[] = [];
    const real = stack.app.gateways.wechat;
    const slow = {
      ...real,
      createPayParam: async (request: Parameters<typeof real.createPayParam>[0]) => {
        prepaid.push(request.outTradeNo);
        const payParam = await real.createPayParam(request);
        await landed;
        return payParam;
      },
    };
    const wechatPay = pay(stack, user, { method: 1 }, payDeps(stack, { gateways: { ...stack.app.gateways, wechat: slow } }));
    while (prepaid.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    stack.gateway.registerAlipayOrder(alipay.payParam);
    expect(await completePayment(deps, paymentOf(alipay.outTradeNo))).toBe('paid');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: alipay.outTradeNo });
    land();
    await expect(wechatPay).rejects.toMatchObject({ code: 'ORDER_ALREADY_PAID' });
    expect(await state.attempt(prepaid[0])).toBeUndefined();
    expect(stack.gateway.trade(prepaid[0])).toMatchObject({ status: 'UNPAID' });
    expect(await state.attemptsOf(user.orderId)).toEqual([expect.objectContaining({ out_trade_no: alipay.outTradeNo, status: 'paid' })]);
  });
});

describe('the sweeper', () => {
  it('leaves a quiet, unexpired, unpaid attempt alone', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await sweepAt(5 * MINUTE);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
    expect(stack.gateway.trade(attempt.outTradeNo)?.status).toBe('UNPAID');
  });

  it('does not even look at an attempt younger than its quiet period', async () => {
    const user = await givenUser(stack, 0);
    const attempt = await pay(stack, user, { method: 1 });
    stack.gateway.pay(attempt.outTradeNo);
    await sweepAt(0);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
  });

  it('completes a paid attempt whose notification never came, exactly as the notification would', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const { transactionId } = stack.gateway.pay(attempt.outTradeNo);
    await sweepAt(3 * MINUTE);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'paid', transaction_id: transactionId });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
  });

  it('closes an expired attempt at the gateway, then releases its points and the order', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await sweepAt(31 * MINUTE);
    expect(stack.gateway.trade(attempt.outTradeNo)?.status).toBe('CLOSED');
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired' });
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ gsi1pk: expect.stringMatching(/^DUE#/) }); // watched until a last check after expiry
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });

  it('two sweeps at once release an expired attempt once', async () => {
    const user = await givenUser(stack, 1000);
    await pay(stack, user, { method: 5, points: 800, priceFen: 8000 });
    await Promise.all([sweepAt(31 * MINUTE), sweepAt(31 * MINUTE), sweepAt(31 * MINUTE)]);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'release')).toHaveLength(1);
  });

  it('a notification racing the sweeper settles to one outcome', async () => {
    for (let run = 0; run < 5; run++) {
      const user = await givenUser(stack, 1000);
      const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
      const payment = paymentOf(attempt.outTradeNo);
      const [outcome] = await Promise.all([completePayment(deps, payment), sweepAt(31 * MINUTE), completePayment(deps, payment)]);
      expect(['paid', 'duplicate']).toContain(outcome);
      expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: attempt.outTradeNo });
      expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
    }
  });

  it('a sweep racing an expiry release and a late notification never loses the payment', async () => {
    for (let run = 0; run < 5; run++) {
      const user = await givenUser(stack, 1000);
      const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
      // the user pays at the last second: the sweeper may release first, then the notification must still pay the order
      const sweep = sweepAt(31 * MINUTE);
      const payment = paymentOf(attempt.outTradeNo);
      await Promise.all([sweep, completePayment(deps, payment)]);
      await completePayment(deps, payment); // WeChat resends until acknowledged
      expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: attempt.outTradeNo });
      expect(await state.account(user.userId)).toMatchObject({ integral_held: 0, integral_spent: 800, integral_available: 200 });
    }
  });
});

describe('a crash between any two steps leaves a state the sweeper repairs', () => {
  it('pay: WeChat took the prepay, then the process died before the write: nothing written, the WeChat order payable by nobody; the user taps again', async () => {
    const user = await givenUser(stack, 1000);
    const prepaid: string[] = [];
    const real = stack.app.gateways.wechat;
    const dying = {
      ...real,
      createPayParam: async (request: Parameters<typeof real.createPayParam>[0]) => {
        prepaid.push(request.outTradeNo);
        await real.createPayParam(request);
        throw new Error('process died');
      },
    };
    const before = await state.snapshot();
    await expect(
      pay(stack, user, { method: 4, points: 800, priceFen: 8000 }, payDeps(stack, { gateways: { ...stack.app.gateways, wechat: dying } })),
    ).rejects.toThrow('process died');
    expect(await state.snapshot()).toEqual(before);
    // WeChat's order exists, unpaid: its prepay id never left the process, so no app can open it; it expires at WeChat.
    expect(stack.gateway.trade(prepaid[0])).toMatchObject({ status: 'UNPAID' });
    expect((await stack.reconcile()).problems).toEqual([]);
    const again = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    expect(again.outcome).toBe('pay_param');
    expect(again.outTradeNo).not.toBe(prepaid[0]);
    expect(await state.attemptsOf(user.orderId)).toHaveLength(1);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it('pay: the process died at the gateway call, before the write; the user taps again', async () => {
    const user = await givenUser(stack, 1000);
    const gateways = { ...stack.app.gateways, wechat: { ...stack.app.gateways.wechat, createPayParam: () => Promise.reject(new Error('process died')) } };
    const store = storeWith(stack, { releaseAttempt: async () => false });
    await expect(pay(stack, user, { method: 4, points: 800, priceFen: 8000 }, payDeps(stack, { gateways, store }))).rejects.toThrow('process died');
    const again = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    expect(again.outcome).toBe('pay_param');
    expect(await state.attemptsOf(user.orderId)).toHaveLength(1);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it('sweep: closed at the gateway, then died before the release; the next sweep releases', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const store = storeWith(stack, {
      releaseAttempt: async () => {
        throw new Error('process died');
      },
    });
    expect((await sweepAt(31 * MINUTE, { store })).failed).toBeGreaterThan(0);
    expect(stack.gateway.trade(attempt.outTradeNo)?.status).toBe('CLOSED');
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open', check_failures: 1 });
    await sweepAt(31 * MINUTE); // due again after a backoff of up to 30 s, not at once
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
    await sweepAt(32 * MINUTE);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });

  it('sweep: the gateway cannot be reached; nothing is released until it can say', async () => {
    // Settle the earlier tests' open attempts first, so that the failures below hit this one.
    await sweepAt(31 * MINUTE);
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    // Past its expiry the sweep closes it without asking first: the close fails, and the query it then
    // asks says the trade can still be paid; then the close goes through but its answer is lost.
    stack.gateway.failNext('wechat.close', 1, '500');
    expect(await sweepAt(31 * MINUTE)).toMatchObject({ failed: 1, released: 0 });
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open', check_failures: 1 });
    stack.gateway.failNext('wechat.close', 1, 'drop'); // closed, but the answer is lost
    expect(await sweepAt(31 * MINUTE)).toMatchObject({ failed: 0, released: 0 }); // the first backoff (up to 30 s) is not over
    // After it: the query says the trade is closed, so it is released without another close.
    expect(await sweepAt(32 * MINUTE)).toMatchObject({ failed: 0, released: 1 });
    expect(stack.gateway.trade(attempt.outTradeNo)).toMatchObject({ status: 'CLOSED' });
    expect(await state.attempt(attempt.outTradeNo)).not.toHaveProperty('check_failures');
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });

  it('supersede: old attempt closed at the gateway, then died before the write; the same choice still works', async () => {
    const user = await givenUser(stack, 1000);
    const old = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const store = storeWith(stack, {
      commitAttempt: async () => {
        throw new Error('process died');
      },
    });
    await expect(pay(stack, user, { method: 1, points: 0, priceFen: 8800 }, payDeps(stack, { store }))).rejects.toThrow('process died');
    expect(stack.gateway.trade(old.outTradeNo)?.status).toBe('CLOSED');
    // the user taps the old choice again: its trade is closed, so a new attempt replaces it
    const again = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    expect(again.outTradeNo).not.toBe(old.outTradeNo);
    expect(await state.attempt(old.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });
});
