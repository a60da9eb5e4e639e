import type { PaymentGateway } from '../../../lib/gateways/paymentGateway';
import { GATEWAY_STEP_MS } from '../../../lib/pay/payOrder';
import { httpEvent, lambdaContext } from '../../../scripts/local/httpEvents';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay, payDeps } from '../../support/world';

/**
 * Issue 11, item 1: every pay request has a time budget. No step starts that cannot finish, and a
 * request that runs out answers ORDER_BUSY while that is true; the next tap finds the same state.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** The WeChat gateway, counting its calls. */
function countedWechat() {
  const calls: string[] = [];
  const real = stack.app.gateways.wechat;
  const gateway: PaymentGateway = {
    ...real,
    channel: 'wechat',
    createPayParam: (r) => {
      calls.push('prepay');
      return real.createPayParam(r);
    },
    queryTrade: (no) => {
      calls.push('query');
      return real.queryTrade(no);
    },
    closeTrade: (no) => {
      calls.push('close');
      return real.closeTrade(no);
    },
  };
  return { calls, gateways: { ...stack.app.gateways, wechat: gateway } };
}

/** A deadline whose remaining time is read from `left` at each check, in order (the last one repeats). */
function deadline(...left: number[]) {
  let i = 0;
  return { remainingMs: () => left[Math.min(i++, left.length - 1)] as number };
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => 'answered',
    (error: { code?: string }) => error.code,
  );

it('a supersede that could not finish in the time left is refused before it starts: ORDER_BUSY, nothing changed, no gateway call', async () => {
  const user = await givenUser(stack, 1000);
  const first = await pay(stack, user, { method: 1 });
  const { calls, gateways } = countedWechat();
  const before = await state.snapshot();
  // A supersede takes three gateway steps (query and close the old trade, prepay the new one).
  const busy = pay(stack, user, { method: 4, points: 800, priceFen: 8000 }, payDeps(stack, { gateways, deadline: deadline(3 * GATEWAY_STEP_MS - 1) }));
  expect(await refusal(busy)).toBe('ORDER_BUSY');
  expect(calls).toEqual([]);
  expect(await state.snapshot()).toEqual(before);

  // With the time, the same tap goes through.
  const done = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 }, payDeps(stack, { gateways, deadline: deadline(3 * GATEWAY_STEP_MS) }));
  expect(done.outTradeNo).not.toBe(first.outTradeNo);
  expect(calls).toEqual(['query', 'close', 'prepay']);
});

it('time running out after the old trade was closed: ORDER_BUSY before the write, and the next tap replaces the attempt', async () => {
  const user = await givenUser(stack, 1000);
  const first = await pay(stack, user, { method: 1 });
  const { calls, gateways } = countedWechat();
  // Enough for the whole supersede at first; after closing, less than one step is left.
  const busy = pay(stack, user, { method: 2 }, payDeps(stack, { gateways, deadline: deadline(3 * GATEWAY_STEP_MS, GATEWAY_STEP_MS - 1) }));
  expect(await refusal(busy)).toBe('ORDER_BUSY');
  expect(calls).toEqual(['query', 'close']);
  // Told the truth: the order is still paying with the old attempt (closed at WeChat), its points untouched.
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: first.outTradeNo } });
  const again = await pay(stack, user, { method: 2 });
  expect(again.outTradeNo).not.toBe(first.outTradeNo);
  expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
});

it('a first pay needs one step; a repeat tap one', async () => {
  const user = await givenUser(stack, 0);
  const { gateways } = countedWechat();
  expect(await refusal(pay(stack, user, { method: 1 }, payDeps(stack, { gateways, deadline: deadline(GATEWAY_STEP_MS - 1) })))).toBe('ORDER_BUSY');
  expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
  const first = await pay(stack, user, { method: 1 }, payDeps(stack, { gateways, deadline: deadline(GATEWAY_STEP_MS) }));
  expect(await refusal(pay(stack, user, { method: 1 }, payDeps(stack, { gateways, deadline: deadline(GATEWAY_STEP_MS - 1) })))).toBe('ORDER_BUSY');
  expect((await pay(stack, user, { method: 1 }, payDeps(stack, { gateways, deadline: deadline(GATEWAY_STEP_MS) }))).outTradeNo).toBe(first.outTradeNo);
});

it('the deployed handler budgets from the Lambda context: 5 s left answers ORDER_BUSY in the envelope, not a timeout', async () => {
  const user = await givenUser(stack, 0);
  Object.assign(process.env, stack.env);
  const { handler } = (await import('../../../functions/payOrder/handler')) as unknown as {
    handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }>;
  };
  const body = JSON.stringify({ order_id: user.orderId, pay_method: 1, pay_price: '88.00', pay_integral: 0, address_id: user.addressId, freight_mode: 1 });
  const event = httpEvent({ path: '/order/pay', headers: { token: user.token, 'content-type': 'application/json' }, body });
  const reply = await handler(event, { ...lambdaContext, getRemainingTimeInMillis: () => 5_000 });
  expect(reply.statusCode).toBe(200);
  expect(JSON.parse(reply.body)).toMatchObject({ status: 0, code: 'ORDER_BUSY', msg: '订单正在处理中,请稍后再试' });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
});
