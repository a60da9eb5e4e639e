import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { getPayStatus } from '../../lib/pay/payStatus';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { givenUser, pay, storeWith } from '../support/world';

let stack: TestStack;
let state: ReturnType<typeof tableState>;
let handler: (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  Object.assign(process.env, stack.env);
  ({ handler } = (await import('../../functions/payStatus/handler')) as never);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

async function status(token: string, query: Record<string, string>) {
  const response = await handler(httpEvent({ method: 'GET', path: '/order/pay/status', headers: { token }, query }), lambdaContext);
  return JSON.parse(response.body as string);
}

it('an unpaid order has no current attempt', async () => {
  const user = await givenUser(stack, 0);
  expect(await status(user.token, { order_id: String(user.orderId) })).toEqual({
    status: 200,
    msg: 'ok',
    data: {
      order_id: user.orderId,
      order_status: 'unpaid',
      pay_method: null,
      pay_price: null,
      pay_integral: null,
      out_trade_no: null,
      paid_at: null,
      refund: null,
    },
  });
});

it('a paying order shows its attempt, without asking the gateway while the attempt is fresh', async () => {
  const user = await givenUser(stack, 1000);
  const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  stack.gateway.pay(attempt.outTradeNo); // paid, but no notification yet and the attempt is under a minute old
  expect((await status(user.token, { order_id: String(user.orderId) })).data).toEqual({
    order_id: user.orderId,
    order_status: 'paying',
    pay_method: 4,
    pay_price: '80.00',
    pay_integral: 800,
    out_trade_no: attempt.outTradeNo,
    paid_at: null,
    refund: null,
  });
});

it('a paying order whose attempt is over a minute old is checked at the gateway and completed if paid', async () => {
  const user = await givenUser(stack, 1000);
  const attempt = await pay(stack, user, { method: 5, points: 800, priceFen: 8000 });
  stack.gateway.registerAlipayOrder(String((attempt as { payParam: string }).payParam));
  stack.gateway.pay(attempt.outTradeNo);
  const later = { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(Date.now() + 61_000) };
  const data = await getPayStatus(later, user.userId, user.orderId);
  expect(data).toMatchObject({
    order_status: 'paid',
    pay_method: 5,
    pay_price: '80.00',
    pay_integral: 800,
    out_trade_no: attempt.outTradeNo,
    paid_at: expect.any(String),
  });
  expect(await state.account(user.userId)).toMatchObject({ integral_held: 0, integral_spent: 800 });
});

it('a gateway that cannot answer does not fail the status: the stored state is shown', async () => {
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  stack.gateway.failNext('wechat.query', 1, '500');
  const later = { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(Date.now() + 61_000) };
  expect(await getPayStatus(later, user.userId, user.orderId)).toMatchObject({ order_status: 'paying', out_trade_no: attempt.outTradeNo });
});

it.each([
  ['another user', (other: string) => ({ token: other, query: {} as Record<string, string> }), 'ORDER_NOT_FOUND'],
  ['no order_id', (mine: string) => ({ token: mine, query: {} }), 'INVALID_PARAM'],
  ['a bad order_id', (mine: string) => ({ token: mine, query: { order_id: 'abc' } }), 'INVALID_PARAM'],
  ['no token', () => ({ token: '', query: {} }), 'TOKEN_MISSING'],
])('%s is refused with the envelope', async (title, request, code) => {
  const owner = await givenUser(stack, 0);
  const other = await givenUser(stack, 0);
  const { token, query } = request(title === 'another user' ? other.token : owner.token);
  const reply = await status(token, title === 'another user' ? { order_id: String(owner.orderId) } : query);
  expect(reply).toMatchObject({ status: 0, code, data: [] });
});

it.each(['0', '-', '+', ' '])("order_id with %p before its owner's order id is refused by the one number rule", async (prefix) => {
  const owner = await givenUser(stack, 0);
  expect(await status(owner.token, { order_id: `${prefix}${owner.orderId}` })).toMatchObject({ status: 0, code: 'INVALID_PARAM', data: [] });
});

it('a lost race while completing does not fail the status: the stored state is shown', async () => {
  const { WriteConflict } = await import('../../lib/store/payStore');
  const user = await givenUser(stack, 0);
  const attempt = await pay(stack, user, { method: 1 });
  stack.gateway.pay(attempt.outTradeNo);
  const store = storeWith(stack, {
    captureAttempt: async () => {
      throw new WriteConflict('state');
    },
  });
  const later = { store, gateways: stack.app.gateways, now: () => new Date(Date.now() + 61_000) };
  expect(await getPayStatus(later, user.userId, user.orderId)).toMatchObject({ order_status: 'paying', out_trade_no: attempt.outTradeNo });
  // the gateway was asked, so a look within 30 s answers from the table (issue 11: one check per 30 s)
  expect(await getPayStatus({ ...later, store: stack.app.store }, user.userId, user.orderId)).toMatchObject({ order_status: 'paying' });
  // and the next look after that completes it
  const afterInterval = { ...later, store: stack.app.store, now: () => new Date(Date.now() + 61_000 + 31_000) };
  expect(await getPayStatus(afterInterval, user.userId, user.orderId)).toMatchObject({ order_status: 'paid' });
});
