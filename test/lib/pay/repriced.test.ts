import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { GatewayPayment } from '../../../lib/domain/model';
import { completePayment } from '../../../lib/pay/completePayment';
import { keys } from '../../../lib/store/keys';
import { WriteConflict } from '../../../lib/store/payStore';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay, storeWith } from '../../support/world';

/**
 * Issue 11, item 4: an attempt opened at one price, the order repriced by some path other than the
 * shop's upsert-order (which closes the attempt itself): the attempt's money must never pay the order.
 * It is a refund case, and an order paying with that attempt goes back to unpaid.
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** The order's price changed in the table directly (an admin tool, a migration): nothing else moves. */
const reprice = (orderId: number, goodsFen: number) =>
  stack.db.send(
    new UpdateCommand({ TableName: TABLE, Key: keys.order(orderId), UpdateExpression: 'SET goods_fen = :g', ExpressionAttributeValues: { ':g': goodsFen } }),
  );

const paymentOf = (outTradeNo: string, amountFen: number, channel: 'wechat' | 'alipay' = 'wechat'): GatewayPayment => ({
  channel,
  outTradeNo,
  transactionId: `t-${outTradeNo}`,
  amountFen,
  paidAt: new Date().toISOString(),
});

it('the open attempt of a repriced order is not captured: a refund case, its points back, the order unpaid at its new price', async () => {
  const user = await givenUser(stack, 1000, ['200.00']);
  const opened = await pay(stack, user, { method: 4, points: 800, priceFen: 19_200 });
  expect(await state.attempt(opened.outTradeNo)).toMatchObject({ quoted_price: { goods_fen: 20_000, free_shipping: true } });
  await reprice(user.orderId, 15_000);

  expect(await completePayment(stack.app, paymentOf(opened.outTradeNo, 19_200))).toBe('refund_required');
  expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid', goods_fen: 15_000 });
  expect(await state.order(user.orderId)).not.toHaveProperty('open_attempt');
  expect(await state.attempt(opened.outTradeNo)).toMatchObject({ status: 'refund_required', refund_no: `${opened.outTradeNo}R1` });
  expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 0 });
  expect((await stack.app.store.getEvent(`evt_payment_refund_required_${opened.outTradeNo}`))?.event.data).toMatchObject({ amount: '192.00' });

  // The order can be paid again at its new price.
  const again = await pay(stack, user, { method: 1, priceFen: 15_000 });
  expect(await completePayment(stack.app, paymentOf(again.outTradeNo, 15_000))).toBe('paid');
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: again.outTradeNo });
});

it('a released attempt paid late after its unpaid order was repriced does not pay it either', async () => {
  const user = await givenUser(stack, 0, ['200.00']);
  const first = await pay(stack, user, { method: 1, priceFen: 20_000 });
  const second = await pay(stack, user, { method: 2, priceFen: 20_000 }); // first superseded
  expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
  await reprice(user.orderId, 15_000);
  expect(await completePayment(stack.app, paymentOf(first.outTradeNo, 20_000))).toBe('refund_required');
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: second.outTradeNo } });
  expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'refund_required' });
});

it('the capture write itself checks the price: a reprice after the read loses the race and nothing is paid', async () => {
  const user = await givenUser(stack, 0, ['200.00']);
  const opened = await pay(stack, user, { method: 1, priceFen: 20_000 });
  const attempt = await stack.app.store.getAttempt(opened.outTradeNo);
  if (!attempt) throw new Error('no attempt');
  await reprice(user.orderId, 15_000);
  const before = await state.snapshot();
  await expect(stack.app.store.captureAttempt(attempt, paymentOf(opened.outTradeNo, 20_000), new Date().toISOString())).rejects.toBeInstanceOf(WriteConflict);
  expect(await state.snapshot()).toEqual(before);
  await reprice(user.orderId, 20_000); // back to its price: the books balance again once it is paid or released
  expect(await completePayment(stack.app, paymentOf(opened.outTradeNo, 20_000))).toBe('paid');
});

it('an attempt written before prices were recorded on attempts is captured as before', async () => {
  const user = await givenUser(stack, 0, ['200.00']);
  const opened = await pay(stack, user, { method: 1, priceFen: 20_000 });
  await stack.db.send(new UpdateCommand({ TableName: TABLE, Key: keys.attempt(opened.outTradeNo), UpdateExpression: 'REMOVE quoted_price' }));
  expect(await completePayment(stack.app, paymentOf(opened.outTradeNo, 20_000))).toBe('paid');
});

it("repriced between the attempt's first read and the settlement read: a refund case, and the order's own attempt is not closed", async () => {
  const user = await givenUser(stack, 0, ['200.00']);
  const first = await pay(stack, user, { method: 2, priceFen: 20_000 });
  const second = await pay(stack, user, { method: 1, priceFen: 20_000 }); // first superseded
  // The reprice lands after completePayment's first look at the order, before the look it decides from.
  const store = storeWith(stack, {
    loadSettlementContext: async (attempt) => {
      await reprice(user.orderId, 15_000);
      return stack.app.store.loadSettlementContext(attempt);
    },
  });
  expect(await completePayment({ ...stack.app, store }, paymentOf(first.outTradeNo, 20_000, 'alipay'))).toBe('refund_required');
  expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'refund_required' });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: second.outTradeNo } });
  // The buyer's current pay sheet still works: it is not closed for money that cannot pay the order.
  expect(stack.gateway.trade(second.outTradeNo)?.status).toBe('UNPAID');
  await reprice(user.orderId, 20_000);
  expect(await completePayment(stack.app, paymentOf(second.outTradeNo, 20_000))).toBe('paid');
});
