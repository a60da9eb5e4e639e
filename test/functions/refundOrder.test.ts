import { completePayment } from '../../lib/pay/completePayment';
import { captureOutput } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { gatewayPayment, givenUser, pay } from '../support/world';

/** The refundOrder function as an operator invokes it: always a JSON answer, never a throw. */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let handler: (event: unknown, context: unknown) => Promise<Record<string, unknown>>;
let app: typeof import('../../functions/refundOrder/handler')['app'];

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  Object.assign(process.env, stack.env);
  ({ handler, app } = (await import('../../functions/refundOrder/handler')) as never);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

const invoke = (event: unknown) => handler(event, { awsRequestId: 'operator', functionName: 'refundOrder', getRemainingTimeInMillis: () => 30_000 });

it('refunds a points-only order at once and answers the order and its refund, in yuan and Beijing time', async () => {
  const user = await givenUser(stack, 10_000);
  const { outTradeNo } = await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
  expect(await invoke({ order_id: user.orderId, reason: '用户取消订单' })).toEqual({
    order_id: user.orderId,
    order_status: 'refunded',
    refund: {
      out_refund_no: `${outTradeNo}R1`,
      out_trade_no: outTradeNo,
      kind: 'order',
      status: 'succeeded',
      refund_price: '0.00',
      refund_integral: 8800,
      reason: '用户取消订单',
      created_at: expect.stringMatching(/\+08:00$/),
      refunded_at: expect.stringMatching(/\+08:00$/),
      failure_reason: null,
      repaid_outside: null,
    },
  });
  // Asked again: the same refund, nothing refunded twice.
  expect(await invoke({ order_id: user.orderId, reason: '再来一次' })).toMatchObject({
    order_status: 'refunded',
    refund: { out_refund_no: `${outTradeNo}R1` },
  });
  expect(await state.account(user.userId)).toMatchObject({ integral_available: 10_000, integral_spent: 0 });
});

it.each([
  ['no order_id', { reason: '用户取消' }],
  ['an order_id that is not a positive integer', { order_id: '501', reason: '用户取消' }],
  ['no reason', { order_id: 501 }],
  ['an empty reason', { order_id: 501, reason: '   ' }],
  ['a reason longer than WeChat takes', { order_id: 501, reason: '退'.repeat(81) }],
  ['a malformed out_trade_no', { order_id: 501, reason: '用户取消', out_trade_no: 'R1; drop' }],
  ['an empty repaid_outside', { order_id: 501, reason: '用户取消', repaid_outside: '  ' }],
  ['a repaid_outside longer than 200', { order_id: 501, reason: '用户取消', repaid_outside: '转'.repeat(201) }],
  ['a repaid_outside that is not text', { order_id: 501, reason: '用户取消', repaid_outside: true }],
  ['no event at all', null],
])('answers INVALID_REQUEST for %s, changing nothing', async (_what, event) => {
  const before = await state.snapshot();
  expect(await invoke(event)).toEqual({ error: 'INVALID_REQUEST', message: expect.stringContaining('order_id') });
  expect(await state.snapshot()).toEqual(before);
});

it('records a refund repaid outside the gateways: refunded at once, the note answered back, nothing sent to the gateway', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  stack.gateway.pay(outTradeNo);
  expect(await completePayment(app, gatewayPayment(outTradeNo, 'wechat'))).toBe('paid');
  expect(await invoke({ order_id: user.orderId, reason: '用户取消订单', repaid_outside: ' 银行转账 流水号 88123 ' })).toMatchObject({
    order_status: 'refunded',
    refund: { out_refund_no: `${outTradeNo}R1`, status: 'succeeded', refund_price: '88.00', repaid_outside: '银行转账 流水号 88123' },
  });
  expect(stack.gateway.refunds(outTradeNo)).toEqual([]);
});

it('answers a refusal with its code and Chinese message, and logs its code', async () => {
  const user = await givenUser(stack, 0);
  const { result, lines } = await captureOutput(() => invoke({ order_id: 999_999, reason: '用户取消' }));
  expect(result).toEqual({ error: 'ORDER_NOT_FOUND', message: '订单不存在' });
  expect(lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'refund refused', code: 'ORDER_NOT_FOUND' }));
  expect(await invoke({ order_id: user.orderId, reason: '用户取消' })).toEqual({ error: 'ORDER_NOT_PAID', message: '订单未支付,无法退款(订单状态 unpaid)' });
});

it('answers INTERNAL_ERROR, logged, when something of ours fails: never a throw', async () => {
  const user = await givenUser(stack, 0);
  const getOrder = app.store.getOrder;
  app.store.getOrder = async () => {
    throw new Error('database down');
  };
  try {
    const { result, lines } = await captureOutput(() => invoke({ order_id: user.orderId, reason: '用户取消' }));
    expect(result).toEqual({ error: 'INTERNAL_ERROR', message: '系统繁忙,请稍后再试' });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'refund request failed' }));
  } finally {
    app.store.getOrder = getOrder;
  }
});

it('refuses an order imported as paid outside paynow (nothing of ours to send back), cleanly', async () => {
  const user = await givenUser(stack, 0);
  await stack.seed({
    orders: [{ order_id: 770_001, user_id: user.userId, goods_name: '历史订单', goods_price: '10.00', free_shipping: true, status: 'paid', freight_json: [] }],
  });
  expect(await invoke({ order_id: 770_001, reason: '用户取消订单' })).toEqual({
    error: 'NOT_REFUNDABLE',
    message: expect.stringContaining('请在原支付渠道退款'),
  });
});
