import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Attempt } from '../../../lib/domain/model';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { keys } from '../../../lib/store/keys';
import { WriteConflict } from '../../../lib/store/payStore';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser, pay } from '../../support/world';

/**
 * Each condition of the store's writes, on its own: a write computed from a state that has since
 * moved must change nothing. (The concurrency tests prove the same through races; these name the
 * condition that holds the line.)
 */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let db: ReturnType<typeof createDocumentClient>;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  db = createDocumentClient(stack.dynamo.endpoint);
});
afterAll(() =>
  expectBalancedBooksThenClose(
    stack,
    () => db.destroy(),
    () => state.close(),
  ),
);

const attemptOf = async (outTradeNo: string) => (await stack.app.store.getAttempt(outTradeNo)) as Attempt;

describe('releaseAttempt', () => {
  it('leaves alone an attempt that was paid since the copy it was given was read', async () => {
    // Two orders, each with an attempt holding 300 points: the account keeps enough held points for a
    // second release, so only the attempt's own state can refuse it.
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const first = await pay(stack, user, { method: 4, points: 300, priceFen: 8500 });
    await pay(stack, { ...user, orderId: user.orderIds[1] }, { method: 4, points: 300, priceFen: 8500 });
    const stale = await attemptOf(first.outTradeNo);
    await stack.app.store.captureAttempt(
      stale,
      { channel: 'wechat', outTradeNo: first.outTradeNo, transactionId: 't1', amountFen: 8500, paidAt: new Date().toISOString() },
      new Date().toISOString(),
    );
    const before = await state.snapshot();
    expect(await stack.app.store.releaseAttempt(stale, 'expired', new Date().toISOString(), false)).toBe(false);
    expect(await state.snapshot()).toEqual(before);
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'paid' });
  });
});

describe('commitAttempt', () => {
  it('refuses to hold points that were spent since the pay was quoted (a lost race on the points)', async () => {
    const user = await givenUser(stack, 1000, ['88.00', '88.00']);
    const first = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const attempt = await attemptOf(first.outTradeNo);
    // The points went elsewhere between the read and the write: the same attempt, for the other order.
    const again: Attempt = { ...attempt, outTradeNo: `${user.orderIds[1]}T1`, orderId: user.orderIds[1] };
    const order = (await stack.app.store.getOrder(user.orderIds[1]))!;
    const before = await state.snapshot();
    await expect(stack.app.store.commitAttempt({ attempt: again, quoted: order, now: new Date().toISOString() })).rejects.toEqual(new WriteConflict('points'));
    expect(await state.snapshot()).toEqual(before);
  });

  it('refuses to open an attempt on an order that is no longer unpaid (a lost race on the order)', async () => {
    const user = await givenUser(stack, 0);
    const order = (await stack.app.store.getOrder(user.orderId))!;
    await db.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: keys.order(user.orderId),
        UpdateExpression: 'SET #s = :closed',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':closed': 'closed' },
      }),
    );
    const first = await pay(stack, await givenUser(stack, 0), { method: 1 });
    const attempt: Attempt = {
      ...(await attemptOf(first.outTradeNo)),
      outTradeNo: `${user.orderId}T1`,
      orderId: user.orderId,
      userId: user.userId,
      address: { ...(await attemptOf(first.outTradeNo)).address, userId: user.userId },
    };
    const before = await state.snapshot();
    await expect(stack.app.store.commitAttempt({ attempt, quoted: order, now: new Date().toISOString() })).rejects.toEqual(new WriteConflict('state'));
    expect(await state.snapshot()).toEqual(before);
    await stack.seed({ orders: [{ order_id: user.orderId, user_id: user.userId, goods_name: 'x', goods_price: '88.00', free_shipping: true }] });
  });
});
