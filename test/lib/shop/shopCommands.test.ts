import { ShopRefusal } from '../../../lib/domain/errors';
import { GatewayError } from '../../../lib/gateways/paymentGateway';
import { beforeEachCall } from '../../../lib/pay/gatewayRateLimit';
import { runShopCommand, type ShopDeps } from '../../../lib/shop/shopCommands';
import { DynamoPayStore } from '../../../lib/store/dynamoPayStore';
import { WriteConflict } from '../../../lib/store/payStore';
import { recordingClient } from '../../support/sentRequests';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { givenUser, pay, storeWith } from '../../support/world';

/** runShopCommand's refusals that stand for a failure keep it as their cause, so the failure reaches the log. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => expectBalancedBooksThenClose(stack));

/**
 * A store whose first write of the named commands reaches the table but whose answer never comes back
 * (below the SDK's retries, which send it again); `lost()` counts the answers lost.
 */
function storeLosingOneAnswer(commandName: RegExp) {
  const { client } = recordingClient(stack.dynamo.endpoint);
  let lost = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (lost === 0 && commandName.test(String(context.commandName))) {
        lost++;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return result;
    },
    { step: 'deserialize', name: 'loseOneAnswer' },
  );
  return { store: new DynamoPayStore(client, TABLE), lost: () => lost };
}

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

it('a points move whose write keeps losing races is refused POINTS_BUSY (about the points, not an order), the last lost race as its cause', async () => {
  const user = await givenUser(stack, 100);
  const conflict = new WriteConflict('state');
  const store = storeWith(stack, { moveShopPoints: () => Promise.reject(conflict) });
  const move = { user_id: user.userId, points: 5, entry_id: 'always-losing', reason: '签到' };
  for (const command of ['credit-points', 'debit-points'] as const) {
    const refusal = await runShopCommand({ store, gateways: stack.app.gateways }, { command, ...move }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: 'POINTS_BUSY', message: '该用户的积分正在变动中,请稍后再试', cause: conflict });
  }
  expect(await stack.app.store.getAccount(user.userId)).toMatchObject({ available: 100 });
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

it('a new order whose write went through but whose answer was lost (the SDK sends it again) answers created: the shop is told what happened', async () => {
  const { store, lost } = storeLosingOneAnswer(/^(PutItem|TransactWriteItems)Command$/);
  const orderId = 9_100_001;
  const answer = await runShopCommand(
    { store, gateways: stack.app.gateways },
    { command: 'upsert-order', order_id: orderId, user_id: 9_100, goods_name: '商品', goods_price: 8800, free_shipping: true, freight_json: [] },
  );
  expect(lost()).toBe(1);
  expect(answer).toEqual({ ok: true, changed: true, order_id: orderId, order_status: 'unpaid', created: true });
  expect(await stack.app.store.getOrder(orderId)).toMatchObject({ status: 'unpaid', userId: 9_100 });
});

it('a revoke whose delete went through but whose answer was lost (the SDK sends it again) answers changed: the session was revoked', async () => {
  const token = `lost-answer-${'x'.repeat(20)}`;
  await stack.app.store.putSession(token, 9_200, '2099-01-01T00:00:00.000Z');
  const { store, lost } = storeLosingOneAnswer(/^(DeleteItem|TransactWriteItems)Command$/);
  expect(await runShopCommand({ store, gateways: stack.app.gateways }, { command: 'revoke-session', token })).toEqual({ ok: true, changed: true });
  expect(lost()).toBe(1);
  expect(await stack.app.store.findSession(token)).toBeUndefined();
  // Revoked already: nothing to change, and the answer says so.
  expect(await runShopCommand(stack.app, { command: 'revoke-session', token })).toEqual({ ok: true, changed: false });
});

it('close-order of a paying order stamps its writes once the attempt is closed at its gateway: order.closed sorts after anything written meanwhile', async () => {
  const user = await givenUser(stack, 0);
  const { outTradeNo } = await pay(stack, user, { method: 1 });
  // Each gateway call (the query and the close) takes 5 s on this clock.
  let clock = Date.now();
  const before = clock;
  const gateways = beforeEachCall(stack.app.gateways, () => void (clock += 5_000));
  const answer = await runShopCommand({ store: stack.app.store, gateways, now: () => new Date(clock) }, { command: 'close-order', order_id: user.orderId });
  expect(answer).toMatchObject({ changed: true, order_status: 'closed', closed_attempt: outTradeNo });
  expect(clock).toBe(before + 10_000);
  const closed = await stack.app.store.getEvent(`evt_order_closed_${user.orderId}`);
  expect(closed?.event.created_at).toBe(new Date(before + 10_000).toISOString());
});
