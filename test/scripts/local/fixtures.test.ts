import { startTestStack, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => stack.close());

const fixture = {
  users: [{ user_id: 7, integral: 5000, tokens: [{ token: 'secret-token-7', expires_at: '2030-01-01T00:00:00+08:00' }] }],
  addresses: [{ address_id: 70, user_id: 7, name: '张三', phone: '13800000000', province: 'p', city: 'c', district: 'd', detail: 'x' }],
  orders: [
    { order_id: 700, user_id: 7, goods_name: '保温杯', goods_price: '88.00', free_shipping: false, freight_json: [{ key: 2, name: '商家自选', fee: '12.50' }] },
  ],
};

it('stores money in fen and tokens only as their SHA-256', async () => {
  await stack.seed(fixture);
  const state = tableState(stack);
  const items = await state.snapshot();
  expect(JSON.stringify(items)).not.toContain('secret-token-7');
  expect(await state.order(700)).toMatchObject({ goods_fen: 8800, freight_options: [{ key: 2, fee_fen: 1250 }], status: 'unpaid' });
  expect(await stack.app.store.findSession('secret-token-7')).toEqual({ userId: 7, expiresAt: '2029-12-31T16:00:00.000Z' });
  state.close();
});

it('re-seeding overwrites, and forgets the user’s earlier attempts so the books still balance', async () => {
  await stack.seed(fixture);
  const { payOrder } = await import('../../../lib/pay/payOrder');
  await payOrder({ store: stack.app.store, gateways: stack.app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30 }, 7, {
    orderId: 700,
    addressId: 70,
    method: 4,
    priceFen: 7050,
    points: 3000,
    freightMode: 2,
    freightKey: 2,
  });
  await stack.seed({ ...fixture, users: [{ ...fixture.users[0], integral: 100 }] });
  const state = tableState(stack);
  expect(await state.account(7)).toMatchObject({ integral_available: 100, integral_held: 0, integral_spent: 0, integral_credited: 100 });
  expect(await state.order(700)).toMatchObject({ status: 'unpaid' });
  expect(await state.order(700)).not.toHaveProperty('open_attempt');
  expect(await state.ledger(7)).toEqual([]);
  expect((await stack.reconcile()).problems).toEqual([]);
  state.close();
});

it('imports an order seeded as paid as paid outside paynow, and re-seeding its user leaves it paid', async () => {
  const imported = { ...fixture.orders[0], order_id: 701, status: 'paid' as const };
  await stack.seed({ ...fixture, orders: [...fixture.orders, imported] });
  const state = tableState(stack);
  expect(await state.order(701)).toMatchObject({ status: 'paid', paid_outside: true });
  expect(await state.order(700)).not.toHaveProperty('paid_outside');
  await stack.seed(fixture);
  expect(await state.order(701)).toMatchObject({ status: 'paid', paid_outside: true });
  const report = await stack.reconcile();
  expect(report.problems).toEqual([]);
  expect(report.info).toContain('imported as paid outside paynow: 1 order');
  state.close();
});

it.each([
  [{ orders: [{ ...fixture.orders[0], goods_price: '88.001' }] }, 'orders.0.goods_price'],
  [{ users: [{ user_id: 0, integral: 1 }] }, 'users.0.user_id'],
  [{ users: [{ user_id: 1, integral: -1 }] }, 'users.0.integral'],
])('refuses a bad fixture, naming where', async (bad, where) => {
  await expect(stack.seed(bad as never)).rejects.toThrow(where);
});
