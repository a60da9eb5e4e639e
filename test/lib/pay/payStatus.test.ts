import type { Channel } from '../../../lib/domain/model';
import type { PaymentGateway } from '../../../lib/gateways/paymentGateway';
import { logger } from '../../../lib/log';
import type { CompletePaymentDeps } from '../../../lib/pay/completePayment';
import { beforeEachCall } from '../../../lib/pay/gatewayRateLimit';
import { getPayStatus } from '../../../lib/pay/payStatus';
import { captureOutput } from '../../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay } from '../../support/world';

/**
 * The status answer for an order still paying: when the gateway is asked (an attempt older than a
 * minute), what the answer says when the gateway's answer is not a payment this attempt can take, and
 * what a person reads when the gateway cannot say.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let deps: CompletePaymentDeps;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  deps = stack.app;
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** A WeChat + 800 points attempt, and the gateway calls made about it. */
async function payingOrder() {
  const user = await givenUser(stack, 1000);
  const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  const createdAt = Date.parse(String((await state.attempt(outTradeNo))?.created_at));
  const calls: string[] = [];
  const gateways = beforeEachCall(stack.app.gateways, (_channel: Channel, operation) => {
    calls.push(operation);
  });
  // Each a call of its own: the keys the pay bound to the logger are dropped, as at each invocation.
  const statusAt = (ms: number, over: Partial<CompletePaymentDeps> = {}) => {
    logger.resetKeys();
    return getPayStatus({ ...deps, gateways, now: () => new Date(createdAt + ms), ...over }, user.userId, user.orderId);
  };
  return { user, outTradeNo, calls, statusAt };
}

const paying = (outTradeNo: string) => ({
  order_status: 'paying',
  pay_method: 4,
  pay_price: '80.00',
  pay_integral: 800,
  out_trade_no: outTradeNo,
  paid_at: null,
});

it('an attempt a minute old is answered from the table; a millisecond older, the gateway is asked first', async () => {
  const { outTradeNo, calls, statusAt } = await payingOrder();
  expect(await statusAt(60_000)).toMatchObject(paying(outTradeNo));
  expect(calls).toEqual([]);
  expect(await statusAt(60_001)).toMatchObject(paying(outTradeNo));
  expect(calls).toEqual(['queryTrade']);
});

it('a signed "paid" answer of another amount captures nothing, and the answer stays the attempt as stored', async () => {
  const { user, outTradeNo, statusAt } = await payingOrder();
  const lying: PaymentGateway = {
    ...stack.app.gateways.wechat,
    queryTrade: async () => ({ state: 'paid', transactionId: '4200-other-amount', amountFen: 100, paidAt: '2026-11-29T10:00:00+08:00' }),
  };
  expect(await statusAt(2 * 60_000, { gateways: { ...stack.app.gateways, wechat: lying } })).toEqual({
    order_id: user.orderId,
    ...paying(outTradeNo),
    refund: null,
  });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paying' });
});

it('a gateway that cannot say leaves the stored state as the answer, and a warning names the order and the trade', async () => {
  const { user, outTradeNo, statusAt } = await payingOrder();
  stack.gateway.failNext('wechat.query', 1, '500');
  const { result, lines } = await captureOutput(() => statusAt(2 * 60_000));
  expect(result).toMatchObject(paying(outTradeNo));
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'WARN',
      message: 'status check at the gateway failed',
      order_id: user.orderId,
      out_trade_no: outTradeNo,
      error: expect.objectContaining({ name: 'GatewayError' }),
    }),
  );
});
