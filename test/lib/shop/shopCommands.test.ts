import { ShopRefusal } from '../../../lib/domain/errors';
import { GatewayError } from '../../../lib/gateways/paymentGateway';
import { runShopCommand, type ShopDeps } from '../../../lib/shop/shopCommands';
import { WriteConflict } from '../../../lib/store/payStore';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { givenUser, pay, storeWith } from '../../support/world';

/** runShopCommand's refusals that stand for a failure keep it as their cause, so the failure reaches the log. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => expectBalancedBooksThenClose(stack));

const refusalOf = (deps: ShopDeps, orderId: number) =>
  runShopCommand(deps, { command: 'close-order', order_id: orderId }).then(
    () => undefined,
    (error: unknown) => error,
  );

it('an order whose write keeps losing races is refused ORDER_BUSY, the last lost race as its cause', async () => {
  const user = await givenUser(stack, 0);
  const conflict = new WriteConflict('state');
  const store = storeWith(stack, { closeUnpaidOrder: () => Promise.reject(conflict) });
  const refusal = await refusalOf({ store, gateways: stack.app.gateways }, user.orderId);
  expect(refusal).toBeInstanceOf(ShopRefusal);
  expect(refusal).toMatchObject({ code: 'ORDER_BUSY', cause: conflict });
});

it('a gateway that cannot answer is refused GATEWAY_ERROR, its error as the cause', async () => {
  const user = await givenUser(stack, 0);
  await pay(stack, user, { method: 1 });
  stack.gateway.failNext('wechat.query');
  const refusal = await refusalOf(stack.app, user.orderId);
  expect(refusal).toBeInstanceOf(ShopRefusal);
  expect(refusal).toMatchObject({ code: 'GATEWAY_ERROR', cause: expect.any(GatewayError) });
  expect((refusal as Error).cause).toMatchObject({ message: expect.stringContaining('wechat query failed: HTTP 500') });
});
