import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MAX_FEN } from '../../lib/domain/money';
import type { PaymentGateway, PrepayRequest } from '../../lib/gateways/paymentGateway';
import { completePayment } from '../../lib/pay/completePayment';
import { WriteConflict } from '../../lib/store/payStore';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { captureOutput } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { givenUser, pay, payDeps } from '../support/world';

/** The shopCommand function as the shop's services invoke it: every command, its replays and its refusals. */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let handler: (event: unknown, context: unknown) => Promise<Record<string, unknown>>;
let statusHandler: (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;
let app: typeof import('../../functions/shopCommand/handler')['app'];

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  Object.assign(process.env, stack.env);
  ({ handler, app } = (await import('../../functions/shopCommand/handler')) as never);
  ({ handler: statusHandler } = (await import('../../functions/payStatus/handler')) as never);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

const shop = (command: string, fields: Record<string, unknown> = {}) =>
  handler({ command, ...fields }, { awsRequestId: 'shop', functionName: 'shopCommand', getRemainingTimeInMillis: () => 30_000 });
let nextOrder = 90_000;
const order = (userId: number, over: Record<string, unknown> = {}) => ({
  order_id: ++nextOrder,
  user_id: userId,
  goods_name: '保温杯',
  goods_price: '88.00',
  free_shipping: true,
  ...over,
});

describe('upsert-order', () => {
  it('creates an unpaid order, answers a replay as unchanged, and updates it while unpaid', async () => {
    const user = await givenUser(stack, 0);
    const fields = order(user.userId);
    expect(await shop('upsert-order', fields)).toEqual({ ok: true, changed: true, order_id: fields.order_id, order_status: 'unpaid', created: true });
    const before = await state.snapshot();
    expect(await shop('upsert-order', fields)).toEqual({ ok: true, changed: false, order_id: fields.order_id, order_status: 'unpaid' });
    expect(await state.snapshot()).toEqual(before);
    const freight = [
      { key: 1, name: '到付', fee: '0.00' },
      { key: 2, name: '商家自选', fee: '12.00' },
    ];
    expect(await shop('upsert-order', { ...fields, goods_price: '99.50', free_shipping: false, freight_json: freight })).toMatchObject({
      changed: true,
      order_status: 'unpaid',
    });
    expect(await state.order(fields.order_id)).toMatchObject({
      goods_fen: 9950,
      free_shipping: false,
      freight_options: [{ key: 1 }, { key: 2, fee_fen: 1200 }],
    });
    // The app pays it at the new price.
    expect(
      await pay(stack, { ...user, orderId: fields.order_id }, { method: 1, priceFen: 8800 + 1200, freightMode: 2, freightKey: 2 }).catch((e) => e), // the old price
    ).toMatchObject({ code: 'PRICE_MISMATCH' });
    expect(await pay(stack, { ...user, orderId: fields.order_id }, { method: 1, priceFen: 11_150, freightMode: 2, freightKey: 2 })).toMatchObject({
      outcome: 'pay_param',
    });
  });

  it('compares freight options field by field: a replay is unchanged, a new name or fee of one option or free shipping alone is an edit', async () => {
    const user = await givenUser(stack, 0);
    const freight = [
      { key: 1, name: '到付', fee: '0.00' },
      { key: 2, name: '商家自选', fee: '12.00' },
    ];
    const fields = order(user.userId, { free_shipping: false, freight_json: freight });
    await shop('upsert-order', fields);
    expect(await shop('upsert-order', fields)).toMatchObject({ ok: true, changed: false });

    const renamed = [freight[0], { ...freight[1], name: '顺丰' }];
    expect(await shop('upsert-order', { ...fields, freight_json: renamed })).toMatchObject({ changed: true });
    expect(await state.order(fields.order_id)).toMatchObject({ freight_options: [{ name: '到付' }, { name: '顺丰', fee_fen: 1200 }] });

    const refeed = [freight[0], { ...renamed[1], fee: '15.00' }];
    expect(await shop('upsert-order', { ...fields, freight_json: refeed })).toMatchObject({ changed: true });
    expect(await state.order(fields.order_id)).toMatchObject({ freight_options: [{ fee_fen: 0 }, { name: '顺丰', fee_fen: 1500 }] });

    expect(await shop('upsert-order', { ...fields, freight_json: refeed, free_shipping: true })).toMatchObject({ changed: true });
    expect(await state.order(fields.order_id)).toMatchObject({ free_shipping: true, freight_options: [{ key: 1 }, { key: 2 }] });
  });

  it('takes a price of exactly the largest amount (100000000.00 yuan)', async () => {
    const fields = order(1, { goods_price: '100000000.00' });
    expect(await shop('upsert-order', fields)).toMatchObject({ ok: true, changed: true, created: true });
    expect(await state.order(fields.order_id)).toMatchObject({ goods_fen: MAX_FEN });
  });

  it('renames a paying order without touching its open attempt', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const current = { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', goods_price: '88.00', free_shipping: true };
    expect(await shop('upsert-order', { ...current, goods_name: '保温杯(大号)' })).toMatchObject({ changed: true, order_status: 'paying' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', goods_name: '保温杯(大号)', open_attempt: { out_trade_no: outTradeNo } });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open' });
  });

  it("renames a paying order's freight option (its key and fee the same) without touching its open attempt; sent again, nothing changes", async () => {
    const user = await givenUser(stack, 1000, ['88.00'], '12.00');
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 9200, freightMode: 2, freightKey: 2 });
    const freight = [
      { key: 1, name: '到付', fee: '0.00' },
      { key: 2, name: '顺丰', fee: '12.00' },
    ];
    const renamed = { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', goods_price: '88.00', free_shipping: false, freight_json: freight };
    expect(await shop('upsert-order', renamed)).toMatchObject({ changed: true, order_status: 'paying' });
    expect(await state.order(user.orderId)).toMatchObject({
      status: 'paying',
      freight_options: [
        { key: 1, name: '到付', fee_fen: 0 },
        { key: 2, name: '顺丰', fee_fen: 1200 },
      ],
      open_attempt: { out_trade_no: outTradeNo },
    });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open' });
    expect(stack.gateway.trade(outTradeNo)).toMatchObject({ status: 'UNPAID' });
    expect(await shop('upsert-order', renamed)).toMatchObject({ changed: false, order_status: 'paying' });
  });

  it('reprices a paying order by closing its attempt at the gateway and releasing its points; money that comes anyway is a refund case', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const { result: answer, lines } = await captureOutput(() =>
      shop('upsert-order', { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', goods_price: '66.00', free_shipping: true }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'open attempt closed by the shop', order_id: user.orderId, out_trade_no: outTradeNo, repriced: true }),
    );
    expect(answer).toEqual({ ok: true, changed: true, order_id: user.orderId, order_status: 'unpaid', closed_attempt: outTradeNo });
    expect(stack.gateway.trade(outTradeNo)?.status).toBe('CLOSED');
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'closed', gsi1pk: expect.stringMatching(/^DUE#/) });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid', goods_fen: 6600 });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    // The old pay sheet's money, at the old price: never the order's, whatever the order's state.
    const late = { channel: 'wechat' as const, outTradeNo, transactionId: '4200-late', amountFen: 8000, paidAt: new Date().toISOString() };
    expect(await completePayment(stack.app, late)).toBe('refund_required');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
  });

  it('repriced and then back to the old price: money for the attempt the shop closed is still a refund case, never the order', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const fields = { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', free_shipping: true };
    expect(await shop('upsert-order', { ...fields, goods_price: '66.00' })).toMatchObject({ closed_attempt: outTradeNo });
    expect(await shop('upsert-order', { ...fields, goods_price: '88.00' })).toMatchObject({ changed: true, order_status: 'unpaid' });
    // The closed attempt's price is the order's again, its points are free: still, the shop closed it.
    const late = { channel: 'wechat' as const, outTradeNo, transactionId: '4200-there-and-back', amountFen: 8000, paidAt: new Date().toISOString() };
    expect(await completePayment(stack.app, late)).toBe('refund_required');
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refund_required' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid', goods_fen: 8800 });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
  });

  it('refuses to reprice a paying order whose gateway says it is paid, changing nothing', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    stack.gateway.pay(outTradeNo);
    const before = await state.snapshot();
    expect(
      await shop('upsert-order', { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', goods_price: '1.00', free_shipping: true }),
    ).toEqual({
      error: 'ORDER_BEING_PAID',
      message: expect.stringContaining(outTradeNo),
    });
    expect(await state.snapshot()).toEqual(before);
  });

  it('never reopens or reprices a paid order, nor gives an order to another user', async () => {
    const user = await givenUser(stack, 10_000);
    await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    const current = { order_id: user.orderId, user_id: user.userId, goods_name: '保温杯', goods_price: '88.00', free_shipping: true };
    const before = await state.snapshot();
    expect(await shop('upsert-order', current)).toMatchObject({ ok: true, changed: false, order_status: 'paid' });
    expect(await shop('upsert-order', { ...current, goods_price: '1.00' })).toEqual({
      error: 'ORDER_NOT_EDITABLE',
      message: '订单已支付、退款或关闭,不能再修改(订单状态 paid)',
    });
    expect(await shop('upsert-order', { ...current, user_id: user.userId + 1 })).toEqual({
      error: 'ORDER_OWNER_CHANGED',
      message: `订单的用户不能更改(订单属于用户${user.userId})`,
    });
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('close-order', () => {
  it('closes an unpaid order once; the app can no longer pay it', async () => {
    const user = await givenUser(stack, 0);
    expect(await shop('close-order', { order_id: user.orderId })).toEqual({ ok: true, changed: true, order_id: user.orderId, order_status: 'closed' });
    expect(await shop('close-order', { order_id: user.orderId })).toEqual({ ok: true, changed: false, order_id: user.orderId, order_status: 'closed' });
    await expect(pay(stack, user, { method: 1 })).rejects.toMatchObject({ code: 'ORDER_CLOSED' });
  });

  it('closes a paying order: its attempt closed at the gateway, its points back; a late payment becomes a refund case and is refunded', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const { result, lines } = await captureOutput(() => shop('close-order', { order_id: user.orderId, reason: '库存不足' }));
    expect(result).toMatchObject({ changed: true, order_status: 'closed', closed_attempt: outTradeNo });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'open attempt closed by the shop', order_id: user.orderId, out_trade_no: outTradeNo, repriced: false }),
    );
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    const late = { channel: 'wechat' as const, outTradeNo, transactionId: '4200-closed', amountFen: 8000, paidAt: new Date().toISOString() };
    expect(await completePayment(stack.app, late)).toBe('refund_required');
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'refund_required', refund_no: `${outTradeNo}R1` });
  });

  it('refuses to close a paid order (that is a refund) or one that does not exist', async () => {
    const user = await givenUser(stack, 10_000);
    await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    expect(await shop('close-order', { order_id: user.orderId })).toEqual({
      error: 'ORDER_ALREADY_PAID',
      message: '订单已支付,不能关闭(请走退款)(订单状态 paid)',
    });
    expect(await shop('close-order', { order_id: 987_654 })).toEqual({ error: 'ORDER_NOT_FOUND', message: '订单不存在' });
  });

  it('refuses ORDER_BUSY, changing nothing, for an open WeChat attempt WeChat does not know yet (its prepay may be on its way); once it arrived, closes', async () => {
    // Only the code of before 2026-12-01 wrote an attempt before its prepay: written here by a pay whose prepay is held back.
    const user = await givenUser(stack, 0);
    const wechat = stack.app.gateways.wechat;
    let held: PrepayRequest | undefined;
    const unsent: PaymentGateway = Object.assign(Object.create(wechat), {
      createPayParam: async (request: PrepayRequest) => {
        held = request;
        return { appid: 'wx', partnerid: '1', prepayid: 'wx-not-sent', package: 'Sign=WXPay', noncestr: 'n', timestamp: '0', sign: 's' };
      },
    });
    const { outTradeNo } = await pay(stack, user, { method: 1 }, payDeps(stack, { gateways: { ...stack.app.gateways, wechat: unsent } }));
    expect(stack.gateway.trade(outTradeNo)).toBeUndefined();
    const before = await state.snapshot();
    expect(await shop('close-order', { order_id: user.orderId })).toEqual({
      error: 'ORDER_BUSY',
      message: `订单正在处理中,请稍后再试(${outTradeNo})`,
    });
    expect(await state.snapshot()).toEqual(before);
    await wechat.createPayParam(held as PrepayRequest);
    expect(await shop('close-order', { order_id: user.orderId })).toMatchObject({ changed: true, closed_attempt: outTradeNo });
    expect(stack.gateway.trade(outTradeNo)?.status).toBe('CLOSED');
  });

  it("closes an unpaid order while a pay's WeChat prepay is on its way: the pay then loses its write and is refused, its WeChat order never recorded nor payable", async () => {
    const user = await givenUser(stack, 0);
    const wechat = stack.app.gateways.wechat;
    let prepaid!: (outTradeNo: string) => void;
    let prepayAnswers!: () => void;
    const asked = new Promise<string>((resolve) => {
      prepaid = resolve;
    });
    const held = new Promise<void>((resolve) => {
      prepayAnswers = resolve;
    });
    const slowWechat: PaymentGateway = Object.assign(Object.create(wechat), {
      createPayParam: async (request: PrepayRequest) => {
        const payParam = await wechat.createPayParam(request);
        prepaid(request.outTradeNo);
        await held;
        return payParam;
      },
    });
    const paying = pay(stack, user, { method: 1 }, payDeps(stack, { gateways: { ...stack.app.gateways, wechat: slowWechat } }));
    const outTradeNo = await asked;
    expect(await shop('close-order', { order_id: user.orderId })).toMatchObject({ changed: true });
    prepayAnswers();
    await expect(paying).rejects.toMatchObject({ code: 'ORDER_CLOSED' });
    expect(await state.attemptsOf(user.orderId)).toEqual([]);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'closed' });
    expect(stack.gateway.trade(outTradeNo)).toMatchObject({ status: 'UNPAID' });
  });

  it('refuses GATEWAY_ERROR, changing nothing, when the gateway cannot say whether the attempt is paid', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const before = await state.snapshot();
    stack.gateway.failNext('wechat.query');
    const { result, lines } = await captureOutput(() => shop('close-order', { order_id: user.orderId }));
    expect(result).toEqual({ error: 'GATEWAY_ERROR', message: '支付通道繁忙,请稍后再试' });
    // The operator sees which gateway call failed, not only the code.
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'shop command refused',
        code: 'GATEWAY_ERROR',
        error: expect.objectContaining({ name: 'GatewayError' }),
      }),
    );
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.trade(outTradeNo)?.status).toBe('UNPAID');
  });

  it('refuses ORDER_BUSY when its write loses every race', async () => {
    const user = await givenUser(stack, 0);
    const closeUnpaidOrder = app.store.closeUnpaidOrder;
    app.store.closeUnpaidOrder = () => Promise.reject(new WriteConflict('state'));
    try {
      expect(await shop('close-order', { order_id: user.orderId })).toEqual({ error: 'ORDER_BUSY', message: '订单正在处理中,请稍后再试' });
    } finally {
      app.store.closeUnpaidOrder = closeUnpaidOrder;
    }
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
  });

  it('closed twice at once: one close, the other answered as already done', async () => {
    const user = await givenUser(stack, 1000);
    await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const answers = await Promise.all([shop('close-order', { order_id: user.orderId }), shop('close-order', { order_id: user.orderId })]);
    expect(answers.map((a) => a.changed).sort()).toEqual([false, true]);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });
});

describe('credit-points and debit-points', () => {
  it('move available points once per entry id, with a ledger entry; a replay changes nothing', async () => {
    const user = await givenUser(stack, 100);
    const credit = { user_id: user.userId, points: 500, entry_id: 'signin-2026-11-29', reason: '签到奖励' };
    expect(await shop('credit-points', credit)).toEqual({ ok: true, changed: true, user_id: user.userId, entry_id: 'signin-2026-11-29' });
    expect(await shop('credit-points', credit)).toMatchObject({ ok: true, changed: false });
    expect(await shop('debit-points', { ...credit, entry_id: 'exchange-1', points: 200, reason: '兑换' })).toMatchObject({ changed: true });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 400, integral_credited: 400 });
    expect((await state.ledger(user.userId)).map((e) => [e.kind, e.points, e.entry_id])).toEqual(
      expect.arrayContaining([
        ['credit', 500, 'signin-2026-11-29'],
        ['debit', 200, 'exchange-1'],
      ]),
    );
  });

  it('refuse an entry id used for another movement, a debit beyond available, and a debit of a user without points', async () => {
    const user = await givenUser(stack, 100);
    await shop('credit-points', { user_id: user.userId, points: 50, entry_id: 'e-1', reason: '活动' });
    const before = await state.snapshot();
    expect(await shop('credit-points', { user_id: user.userId, points: 60, entry_id: 'e-1', reason: '活动' })).toEqual({
      error: 'ENTRY_ID_REUSED',
      message: '该 entry_id 已用于另一笔不同的积分变动(credit 50)',
    });
    expect(await shop('debit-points', { user_id: user.userId, points: 50, entry_id: 'e-1', reason: '活动' })).toMatchObject({ error: 'ENTRY_ID_REUSED' });
    expect(await shop('debit-points', { user_id: user.userId, points: 151, entry_id: 'e-2', reason: '兑换' })).toEqual({
      error: 'INTEGRAL_NOT_ENOUGH',
      message: '可用积分不足,不能扣减(可用150积分)',
    });
    expect(await shop('debit-points', { user_id: 424_242, points: 1, entry_id: 'e-3', reason: '兑换' })).toEqual({
      error: 'USER_NOT_FOUND',
      message: '用户积分账户不存在(user 424242)',
    });
    expect(await state.snapshot()).toEqual(before);
  });

  it('move points once when the same movement is sent twice at once', async () => {
    const user = await givenUser(stack, 100);
    const credit = { user_id: user.userId, points: 70, entry_id: 'retried-at-once', reason: '活动' };
    const answers = await Promise.all([shop('credit-points', credit), shop('credit-points', credit)]);
    expect(answers.map((a) => a.changed).sort()).toEqual([false, true]);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 170 });
  });

  it('open a points account for a user the shop credits for the first time', async () => {
    expect(await shop('credit-points', { user_id: 515_151, points: 300, entry_id: 'welcome-515151', reason: '新人礼' })).toMatchObject({ changed: true });
    expect(await state.account(515_151)).toMatchObject({ integral_available: 300, integral_held: 0, integral_spent: 0, integral_credited: 300 });
  });

  it('never debit below zero, however many debits arrive at once', async () => {
    const user = await givenUser(stack, 100);
    const debits = Array.from({ length: 5 }, (_, i) => shop('debit-points', { user_id: user.userId, points: 30, entry_id: `burst-${i}`, reason: '兑换' }));
    const answers = await Promise.all(debits);
    expect(answers.filter((a) => a.ok)).toHaveLength(3);
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 10 });
  });
});

describe('sessions and addresses', () => {
  const status = async (token: string, orderId: number) =>
    JSON.parse(
      ((await statusHandler(httpEvent({ method: 'GET', path: '/order/pay/status', headers: { token }, query: { order_id: String(orderId) } }), lambdaContext))
        .body as string) ?? '{}',
    );

  /** What `work` answered and how often it called the store's `method`. */
  async function writesOf(method: 'putSession' | 'putAddress', work: () => Promise<Record<string, unknown>>) {
    const original = app.store[method];
    let writes = 0;
    app.store[method] = (...args: never[]) => {
      writes++;
      return (original as (...a: never[]) => Promise<void>).apply(app.store, args);
    };
    try {
      return { answer: await work(), writes };
    } finally {
      app.store[method] = original as never;
    }
  }

  it('put-session lets a token in (stored as its hash only), revoke-session shuts it out; replays say unchanged', async () => {
    const user = await givenUser(stack, 0);
    const token = 'shop-issued-token-0123456789';
    const session = { token, user_id: user.userId, expires_at: '2099-01-01T00:00:00+08:00' };
    expect(await shop('put-session', session)).toMatchObject({ ok: true, changed: true, expires_at: '2098-12-31T16:00:00.000Z' });
    expect(await writesOf('putSession', () => shop('put-session', session))).toEqual({
      answer: expect.objectContaining({ ok: true, changed: false }),
      writes: 0,
    });
    const sooner = { ...session, expires_at: '2098-06-01T00:00:00Z' };
    expect(await shop('put-session', sooner)).toMatchObject({ ok: true, changed: true });
    expect(await app.store.findSession(token)).toEqual({ userId: user.userId, expiresAt: '2098-06-01T00:00:00.000Z' });
    expect((await status(token, user.orderId)).status).toBe(200);
    expect(JSON.stringify(await state.snapshot())).not.toContain(token);
    expect(await shop('revoke-session', { token })).toEqual({ ok: true, changed: true });
    expect(await shop('revoke-session', { token })).toEqual({ ok: true, changed: false });
    expect(await status(token, user.orderId)).toMatchObject({ status: 0, code: 'TOKEN_INVALID' });
  });

  it('revoke-session still shuts out a session put before tokens had to be printable ASCII', async () => {
    const user = await givenUser(stack, 0);
    const padded = 'token-put-from-a-shell-0123456789\n';
    await app.store.putSession(padded, user.userId, '2099-01-01T00:00:00.000Z');
    expect(await app.store.findSession(padded)).toMatchObject({ userId: user.userId });
    expect(await shop('revoke-session', { token: padded })).toEqual({ ok: true, changed: true });
    expect(await app.store.findSession(padded)).toBeUndefined();
  });

  it('upsert-address stores an address the app can pay with; a replay says unchanged', async () => {
    const user = await givenUser(stack, 0);
    const address = {
      address_id: user.addressId + 5,
      user_id: user.userId,
      name: '李四',
      phone: '13900000000',
      province: '浙江省',
      city: '杭州市',
      district: '西湖区',
      detail: '文三路1号',
    };
    expect(await shop('upsert-address', address)).toEqual({ ok: true, changed: true, address_id: address.address_id });
    expect(await writesOf('putAddress', () => shop('upsert-address', address))).toEqual({
      answer: { ok: true, changed: false, address_id: address.address_id },
      writes: 0,
    });
    expect(await pay(stack, { ...user, addressId: address.address_id }, { method: 1 })).toMatchObject({ outcome: 'pay_param' });
  });
});

describe('bad commands change nothing and say which field', () => {
  it.each([
    ['an unknown command', { command: 'drop-table' }, /^命令格式错误\(command must be one of upsert-order/],
    ['no command at all', {}, /command/],
    ['a price with three decimals', { command: 'upsert-order', ...order(1), goods_price: '88.001' }, /goods_price/],
    ['a price as a number', { command: 'upsert-order', ...order(1), goods_price: 88 }, /goods_price/],
    ['a price of nothing', { command: 'upsert-order', ...order(1), goods_price: '0' }, /goods_price/],
    ['a price above the largest amount', { command: 'upsert-order', ...order(1), goods_price: '100000000.01' }, /goods_price/],
    // The app's one rule for a number's text (lib/domain/numberText.ts): no leading zero, sign or space.
    ['a price with a leading zero', { command: 'upsert-order', ...order(1), goods_price: '088.00' }, /goods_price/],
    ['a price with a space', { command: 'upsert-order', ...order(1), goods_price: ' 88.00' }, /goods_price/],
    ['a fee with a sign', { command: 'upsert-order', ...order(1), freight_json: [{ key: 1, name: 'a', fee: '+1.00' }] }, /freight_json\.0\.fee/],
    ['an order id beyond MAX_SAFE_INTEGER', { command: 'upsert-order', ...order(1), order_id: 2 ** 53 }, /order_id/],
    // The app sends ids as 32-bit integers: an order or address beyond them could never be paid or asked about.
    ['an order id the app cannot send', { command: 'upsert-order', ...order(1), order_id: 2 ** 31 }, /order_id must be at most 2147483647/],
    ['closing an order id the app cannot send', { command: 'close-order', order_id: 2 ** 31 }, /order_id must be at most 2147483647/],
    [
      'an address id the app cannot send',
      { command: 'upsert-address', address_id: 2 ** 31, user_id: 1, name: 'n', phone: '13800000000', province: 'p', city: 'c', district: 'd', detail: 'x' },
      /address_id must be at most 2147483647/,
    ],
    // Not free shipping, and no option the app can choose (1 collected on delivery, 2 merchant courier): nobody could pay it.
    ['an order not free of shipping without freight options', { command: 'upsert-order', ...order(1), free_shipping: false }, /freight_json must offer key 1/],
    [
      'an order not free of shipping with only an option the app cannot choose',
      { command: 'upsert-order', ...order(1), free_shipping: false, freight_json: [{ key: 3, name: '自提', fee: '0.00' }] },
      /freight_json must offer key 1/,
    ],
    ['a status set by the shop', { command: 'upsert-order', ...order(1), status: 'paid' }, /status/],
    [
      'two freight options with one key',
      {
        command: 'upsert-order',
        ...order(1),
        freight_json: [
          { key: 1, name: 'a', fee: '1' },
          { key: 1, name: 'b', fee: '2' },
        ],
      },
      /freight_json/,
    ],
    ['negative points', { command: 'credit-points', user_id: 1, points: -5, entry_id: 'x', reason: 'r' }, /points/],
    ['points as text', { command: 'credit-points', user_id: 1, points: '5', entry_id: 'x', reason: 'r' }, /points/],
    ['an entry id with spaces', { command: 'credit-points', user_id: 1, points: 5, entry_id: 'a b', reason: 'r' }, /entry_id/],
    ['a short token', { command: 'put-session', token: 'abc', user_id: 1, expires_at: '2099-01-01T00:00:00Z' }, /token/],
    // The header is read trimmed: a token stored with a newline could never log in.
    [
      'a token ending in a newline',
      { command: 'put-session', token: `${'x'.repeat(20)}\n`, user_id: 1, expires_at: '2099-01-01T00:00:00Z' },
      /token must be printable ASCII/,
    ],
    ['a token starting with a space', { command: 'put-session', token: ` ${'x'.repeat(20)}`, user_id: 1, expires_at: '2099-01-01T00:00:00Z' }, /token/],
    ['a token no header carries', { command: 'put-session', token: `令牌${'x'.repeat(20)}`, user_id: 1, expires_at: '2099-01-01T00:00:00Z' }, /token/],
    ['an expiry that is no time', { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: 'tomorrow' }, /expires_at/],
    // Date.parse reads both; neither starts as an ISO time does.
    ['an expiry as an HTTP date', { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: 'Fri, 01 Jan 2099 00:00:00 GMT' }, /expires_at/],
    ['an expiry with an expanded year', { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '+002099-01-01T00:00:00Z' }, /expires_at/],
    // Read in the machine's zone: 8 hours apart between Lambda (UTC) and a machine in Beijing.
    ['an expiry without its offset', { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-01-01T10:00:00' }, /expires_at/],
    // Date.parse rolls these over to another day instead of refusing them.
    [
      'an expiry on February 30th',
      { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-02-30T00:00:00Z' },
      /expires_at must be an ISO 8601 time with its offset, one that exists/,
    ],
    [
      'an expiry on April 31st',
      { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-04-31T10:00:00+08:00' },
      /expires_at must be an ISO 8601 time with its offset, one that exists/,
    ],
    [
      'an expiry whose offset is no offset',
      { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-01-01T10:00:00+24:00' },
      /expires_at/,
    ],
    ['an expiry at minute 60', { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-01-01T10:60:00Z' }, /expires_at/],
    [
      'an expiry at 24:00',
      { command: 'put-session', token: 'x'.repeat(20), user_id: 1, expires_at: '2099-01-01T24:00:00Z' },
      /expires_at must be an ISO 8601 time with its offset, one that exists/,
    ],
    ['a field the command does not have', { command: 'close-order', order_id: 1, extra: 1 }, /^命令格式错误\(extra is not a field of this command\)$/],
    [
      'a phone that is no phone',
      { command: 'upsert-address', address_id: 1, user_id: 1, name: 'n', phone: 'call me', province: 'p', city: 'c', district: 'd', detail: 'x' },
      /phone/,
    ],
  ])('%s', async (_what, event, problem) => {
    const before = await state.snapshot();
    const answer = await handler(event, lambdaContext);
    expect(answer).toEqual({ error: 'INVALID_COMMAND', message: expect.stringMatching(problem) });
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('what an operator reads in the log', () => {
  it('a command done: its name and whether it changed anything', async () => {
    const fields = order(1);
    const created = await captureOutput(() => shop('upsert-order', fields));
    expect(created.lines).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'shop command done', command: 'upsert-order', changed: true }));
    const replayed = await captureOutput(() => shop('upsert-order', fields));
    expect(replayed.lines).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'shop command done', command: 'upsert-order', changed: false }));
  });

  it('a refusal: its code, and for a bad command the problem', async () => {
    const notFound = await captureOutput(() => shop('close-order', { order_id: 987_655 }));
    expect(notFound.lines).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'shop command refused', command: 'close-order', code: 'ORDER_NOT_FOUND' }),
    );
    const invalid = await captureOutput(() => shop('close-order', { order_id: 'x' }));
    expect(invalid.lines).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'shop command refused', code: 'INVALID_COMMAND', problem: 'order_id must be a number' }),
    );
  });

  it('a fault of ours: INTERNAL_ERROR answered, never a throw, and the error logged', async () => {
    const getOrder = app.store.getOrder;
    app.store.getOrder = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    try {
      const { result, lines } = await captureOutput(() => shop('close-order', { order_id: 987_656 }));
      expect(result).toEqual({ error: 'INTERNAL_ERROR', message: '系统繁忙,请稍后再试' });
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 'ERROR',
          message: 'shop command failed',
          command: 'close-order',
          error: expect.objectContaining({ message: 'connect ECONNREFUSED', code: 'ECONNREFUSED' }),
        }),
      );
    } finally {
      app.store.getOrder = getOrder;
    }
  });
});
