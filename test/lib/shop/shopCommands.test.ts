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

it('a debit sent again while the first is being written answers it made (changed false), never INTEGRAL_NOT_ENOUGH for points it took', async () => {
  const user = await givenUser(stack, 100);
  const debit = { command: 'debit-points' as const, user_id: user.userId, points: 60, entry_id: 'resent-on-timeout', reason: '兑换' };
  // The resend reads the ledger before the first run has written its entry, then writes after it.
  let first: Promise<unknown> | undefined;
  const store = storeWith(stack, {
    getShopPointsMove: async (...args) => {
      const seen = await stack.app.store.getShopPointsMove(...args);
      first ??= runShopCommand(stack.app, debit);
      await first;
      return seen;
    },
  });
  const resent = await runShopCommand({ store, gateways: stack.app.gateways }, debit);
  expect(await first).toEqual({ ok: true, changed: true, user_id: user.userId, entry_id: 'resent-on-timeout' });
  expect(resent).toEqual({ ok: true, changed: false, user_id: user.userId, entry_id: 'resent-on-timeout' });
  expect(await stack.app.store.getAccount(user.userId)).toMatchObject({ available: 40 });
  // Another debit of the same id is still refused as a reuse, and one the points do not cover as not enough.
  await expect(runShopCommand(stack.app, { ...debit, points: 50 })).rejects.toMatchObject({ code: 'ENTRY_ID_REUSED' });
  await expect(runShopCommand(stack.app, { ...debit, entry_id: 'too-much' })).rejects.toMatchObject({ code: 'INTEGRAL_NOT_ENOUGH' });
});
