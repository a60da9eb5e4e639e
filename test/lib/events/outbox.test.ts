import { createHmac } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { EVENT_SHARDS, eventShard, MAX_DELIVERY_ATTEMPTS } from '../../../lib/domain/events';
import { type DispatchDeps, dispatchEvents, redeliverEvent, SETTLE_MS } from '../../../lib/events/dispatchEvents';
import type { EventSink } from '../../../lib/events/eventSink';
import { verifyEventSignature } from '../../../lib/events/signature';
import { webhookSink } from '../../../lib/events/webhookSink';
import { completePayment } from '../../../lib/pay/completePayment';
import { requestRefund } from '../../../lib/pay/requestRefund';
import { runShopCommand } from '../../../lib/shop/shopCommands';
import { keys, outboxPartition } from '../../../lib/store/keys';
import { WriteConflict } from '../../../lib/store/payStore';
import { localWebhookSecret } from '../../../scripts/local/environment';
import { type EventReceiver, startEventReceiver } from '../../../scripts/local/eventReceiver';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { type GivenUser, gatewayPayment, givenUser, pay, storeWith } from '../../support/world';

/**
 * The outbox over the real local stack: events written in the same transaction as the money change
 * they report, delivered over real HTTP to the demo receiver (which verifies every signature), retried
 * on the backoff schedule, one order's events in order, at least once across a crash.
 */
let stack: TestStack;
let receiver: EventReceiver;
let secret: string;

beforeAll(async () => {
  stack = await startTestStack();
  secret = localWebhookSecret(stack.credentials);
  receiver = await startEventReceiver({ secret });
});
afterEach(() => receiver.failNext(0));
afterAll(() => expectBalancedBooksThenClose(stack, () => receiver.close()));

const MINUTE = 60_000;
/** The run's clock, `offsetMs` after the first run that may send what was just written (SETTLE_MS on). */
const at = (offsetMs: number) => () => new Date(Date.now() + SETTLE_MS + offsetMs);

function deps(offsetMs = 0, over: Partial<DispatchDeps> = {}): DispatchDeps {
  const now = at(offsetMs);
  return {
    store: stack.app.store,
    // Signed at the real time: the receiver checks the signature's time against its own clock.
    sinks: [webhookSink({ url: receiver.url, secrets: [secret], timeoutMs: 2_000, concurrency: 4, now: () => new Date() })],
    now,
    ...over,
  };
}
const dispatch = (offsetMs = 0, over: Partial<DispatchDeps> = {}) =>
  dispatchEvents(deps(offsetMs, over), { perShard: 50, deadline: Date.now() + SETTLE_MS + offsetMs + 30_000 });
const deliveriesOf = (id: string) => receiver.deliveries.filter((d) => d.id === id);
const receivedOf = (id: string) => receiver.received.filter((e) => e.id === id);

async function paidByWechat(user: GivenUser, orderId = user.orderId) {
  const result = await pay(stack, { ...user, orderId });
  const { channel, transactionId, amountFen } = stack.gateway.pay(result.outTradeNo);
  const payment = { channel, outTradeNo: result.outTradeNo, transactionId, amountFen, paidAt: new Date().toISOString() };
  expect(await completePayment(stack.app, payment)).toBe('paid');
  return { outTradeNo: result.outTradeNo, payment };
}

async function eventItem(id: string) {
  return (await stack.db.send(new GetCommand({ TableName: TABLE, Key: keys.event(id) }))).Item;
}

describe('a paid order', () => {
  it('emits order.paid with the payment, which arrives signed and verifiable, once, and no personal data', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo, payment } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    expect((await stack.app.store.getEvent(id))?.status).toBe('pending');

    const report = await dispatch();
    expect(report.delivered).toBeGreaterThanOrEqual(1);
    const [event] = receivedOf(id);
    expect(event).toEqual({
      id,
      type: 'order.paid',
      created_at: expect.any(String),
      data: {
        order_id: user.orderId,
        user_id: user.userId,
        out_trade_no: outTradeNo,
        pay_method: 1,
        pay_price: '88.00',
        pay_integral: 0,
        address_id: user.addressId,
        freight_key: 0, // free shipping: no freight choice
        freight_price: '0.00',
        transaction_id: payment.transactionId,
        paid_at: payment.paidAt,
      },
    });
    // The receiver took it because its signature verified (it answers 401 otherwise); nothing personal in it.
    expect(deliveriesOf(id).map((d) => d.status)).toEqual([200]);
    expect(JSON.stringify(event)).not.toMatch(/张三|13800000000|科技园/);

    const stored = await stack.app.store.getEvent(id);
    expect(stored).toMatchObject({ status: 'delivered', attempts: 1, deliveredTo: ['webhook'], deliveries: [{ results: { webhook: 'ok' } }] });
    expect((await eventItem(id))?.gsi1pk).toBeUndefined(); // out of the outbox index

    await dispatch(60 * MINUTE);
    expect(deliveriesOf(id)).toHaveLength(1); // acknowledged: never again
  });

  it('signs "<t>.<body>" with HMAC-SHA256: checked as the README tells a shop to, and nothing else verifies', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    await dispatch();
    const [delivery] = deliveriesOf(id);
    const { signature, body } = delivery as { signature: string; body: string };
    // The README's snippet, written out independently of lib/events/signature.ts.
    const { t, v1 } = Object.fromEntries(signature.split(',').map((kv) => kv.split('='))) as { t: string; v1: string };
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(60);
    expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
    expect(JSON.parse(body).id).toBe(id);

    const now = new Date();
    expect(verifyEventSignature(signature, body, secret, now)).toBe(true);
    expect(verifyEventSignature(signature, body, `${secret}x`, now)).toBe(false);
    expect(verifyEventSignature(signature, body.replace('88.00', '0.01'), secret, now)).toBe(false);
    expect(verifyEventSignature(signature, body, secret, new Date(now.getTime() + 10 * MINUTE))).toBe(false);
    expect(verifyEventSignature(`t=${t},v1=${'0'.repeat(64)}`, body, secret, now)).toBe(false);
    expect(verifyEventSignature(undefined, body, secret, now)).toBe(false);
  });

  it('no event without its change: a payment write that loses its race writes no event', async () => {
    const user = await givenUser(stack, 0);
    const result = await pay(stack, user);
    const attempt = await stack.app.store.getAttempt(result.outTradeNo);
    if (!attempt) throw new Error('no attempt');
    const payment = { channel: 'wechat' as const, outTradeNo: result.outTradeNo, transactionId: 'T-race', amountFen: 8800, paidAt: new Date().toISOString() };
    await stack.app.store.captureAttempt(attempt, payment, new Date().toISOString());
    // The same capture from a stale copy fails as a whole: no second event, the first unchanged.
    await expect(stack.app.store.captureAttempt(attempt, { ...payment, transactionId: 'T-other' }, new Date().toISOString())).rejects.toBeInstanceOf(
      WriteConflict,
    );
    const event = await stack.app.store.getEvent(`evt_order_paid_${result.outTradeNo}`);
    expect(event?.event.data.transaction_id).toBe('T-race');
  });
});

describe('delivery', () => {
  it('a receiver that fails 3 times gets the event on the 4th try, on the backoff schedule, and never again', async () => {
    await dispatch(); // whatever earlier tests left pending goes now
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const failingId = `evt_order_paid_${outTradeNo}`;

    receiver.failNext(1);
    await dispatch(0);
    expect(await stack.app.store.getEvent(failingId)).toMatchObject({ status: 'pending', attempts: 1, deliveries: [{ results: { webhook: 'http 500' } }] });
    await dispatch(30_000); // not due before a minute
    expect(deliveriesOf(failingId)).toHaveLength(1);

    receiver.failNext(1);
    await dispatch(MINUTE + 1_000);
    receiver.failNext(1);
    await dispatch(4 * MINUTE); // 1 + 2 minutes after
    expect(await stack.app.store.getEvent(failingId)).toMatchObject({ status: 'pending', attempts: 3 });
    await dispatch(8 * MINUTE); // not yet: 5 minutes after the third
    expect(deliveriesOf(failingId)).toHaveLength(3);
    await dispatch(9 * MINUTE + 30_000);
    expect(deliveriesOf(failingId).map((d) => d.status)).toEqual([500, 500, 500, 200]);
    expect(receivedOf(failingId)).toHaveLength(1);
    expect(await stack.app.store.getEvent(failingId)).toMatchObject({ status: 'delivered', attempts: 4 });
    await dispatch(24 * 60 * MINUTE);
    expect(deliveriesOf(failingId)).toHaveLength(4);
  });

  it('a crash after sending and before recording delivers again (at least once); the receiver takes it once', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    const crashing = {
      ...stack.app.store,
      findPendingEvents: stack.app.store.findPendingEvents.bind(stack.app.store),
      getEvent: stack.app.store.getEvent.bind(stack.app.store),
      recordDelivery: async () => {
        throw new Error('the function died here');
      },
    };
    const report = await dispatch(0, { store: crashing });
    expect(report.retrying).toBeGreaterThanOrEqual(1);
    expect(await stack.app.store.getEvent(id)).toMatchObject({ status: 'pending', attempts: 0 });
    await dispatch();
    expect(deliveriesOf(id).map((d) => d.status)).toEqual([200, 200]);
    expect(receivedOf(id)).toHaveLength(1);
    expect((await stack.app.store.getEvent(id))?.status).toBe('delivered');
  });

  it("one order's events go in order: refunded waits until paid is delivered", async () => {
    await dispatch(); // what earlier tests left pending goes now
    const user = await givenUser(stack, 10_000);
    const result = await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    const refund = await requestRefund(stack.app, { orderId: user.orderId, reason: '不想要了' });
    const paidId = `evt_order_paid_${result.outTradeNo}`;
    const refundedId = `evt_order_refunded_${refund.refund.outRefundNo}`;
    expect((await stack.app.store.getEvent(refundedId))?.status).toBe('pending');

    receiver.failNext(1); // the first delivery of this run: the order's paid event
    await dispatch();
    expect(deliveriesOf(paidId).map((d) => d.status)).toEqual([500]);
    expect(deliveriesOf(refundedId)).toHaveLength(0); // held back behind paid

    await dispatch(2 * MINUTE);
    const order = receiver.received.filter((e) => e.data.order_id === user.orderId).map((e) => e.type);
    expect(order).toEqual(['order.paid', 'order.refunded']);
  });

  it('with two targets, only the one that failed is tried again; delivered once both took it', async () => {
    await dispatch();
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    const bus: string[][] = [];
    const busSink = (answer: string): EventSink => ({
      target: 'eventbridge',
      send: async (events) => {
        bus.push(events.map((e) => e.event.id));
        return events.map(() => answer);
      },
    });
    const webhook = deps().sinks[0] as EventSink;
    await dispatch(0, { sinks: [webhook, busSink('ThrottlingException')] });
    expect(await stack.app.store.getEvent(id)).toMatchObject({
      status: 'pending',
      deliveredTo: ['webhook'],
      deliveries: [{ results: { webhook: 'ok', eventbridge: 'ThrottlingException' } }],
    });
    await dispatch(2 * MINUTE, { sinks: [webhook, busSink('ok')] });
    expect(await stack.app.store.getEvent(id)).toMatchObject({ status: 'delivered', deliveredTo: ['webhook', 'eventbridge'], attempts: 2 });
    expect(deliveriesOf(id)).toHaveLength(1); // the webhook had it already
    expect(bus.filter((ids) => ids.includes(id))).toHaveLength(2);
  });

  it('gives up after the last retry (dead, for a person), and a redelivery by hand delivers it', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    const down: EventSink = { target: 'webhook', send: async (events) => events.map(() => 'ECONNREFUSED') };
    let offset = 0;
    for (let attempt = 1; attempt <= MAX_DELIVERY_ATTEMPTS; attempt++) {
      const report = await dispatch(offset, { sinks: [down] });
      if (attempt === MAX_DELIVERY_ATTEMPTS) expect(report.dead).toBeGreaterThanOrEqual(1);
      else if (attempt >= 5) expect(report.failing).toBeGreaterThanOrEqual(1);
      offset += 9 * 60 * MINUTE; // beyond the longest pause
    }
    const dead = await stack.app.store.getEvent(id);
    expect(dead).toMatchObject({ status: 'dead', attempts: MAX_DELIVERY_ATTEMPTS });
    // Retries spanned more than a day.
    const first = Date.parse(dead?.deliveries[0]?.at as string);
    const last = Date.parse(dead?.deliveries.at(-1)?.at as string);
    expect(last - first).toBeGreaterThan(24 * 60 * MINUTE);
    expect((await eventItem(id))?.gsi1pk).toBeUndefined();

    const { event } = await redeliverEvent(deps(), id);
    expect(event).toMatchObject({ status: 'delivered', attempts: MAX_DELIVERY_ATTEMPTS + 1 });
    expect(receivedOf(id)).toHaveLength(1);
  });
});

describe('every money change of an order', () => {
  const typesOf = async (orderId: number) => {
    const { events } = await stack.app.store.findPendingEvents(eventShard(orderId), 500);
    return events.filter((e) => e.event.data.order_id === orderId).map((e) => e.event);
  };

  it('points only: order.paid at once, then order.refunded with the points', async () => {
    await dispatch(); // clear what is pending
    const user = await givenUser(stack, 10_000);
    const result = await pay(stack, user, { method: 3, points: 8800, priceFen: 0 });
    const refund = await requestRefund(stack.app, { orderId: user.orderId, reason: '不想要了' });
    const events = await typesOf(user.orderId);
    expect(events.map((e) => e.type)).toEqual(['order.paid', 'order.refunded']);
    expect(events[0]?.data).toMatchObject({ out_trade_no: result.outTradeNo, pay_method: 3, pay_price: '0.00', pay_integral: 8800, transaction_id: null });
    expect(events[1]?.data).toMatchObject({ out_refund_no: refund.refund.outRefundNo, refund_price: '0.00', refund_integral: 8800, repaid_outside: false });
  });

  it('a second payment of a paid order: payment.refund_required, naming its automatic refund', async () => {
    await dispatch();
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 });
    expect(await completePayment(stack.app, gatewayPayment(first.outTradeNo, 'wechat'))).toBe('paid');
    expect(await completePayment(stack.app, gatewayPayment(second.outTradeNo, 'alipay'))).toBe('refund_required');
    const events = await typesOf(user.orderId);
    expect(events.map((e) => e.type)).toEqual(['order.paid', 'payment.refund_required']);
    expect(events[0]?.data).toMatchObject({ out_trade_no: first.outTradeNo, transaction_id: `t-${first.outTradeNo}` });
    expect(events[1]?.data).toMatchObject({ out_trade_no: second.outTradeNo, amount: '88.00', out_refund_no: `${second.outTradeNo}R1` });
  });

  it('the shop closes an order: order.closed, once, whether it was unpaid or paying', async () => {
    await dispatch();
    const user = await givenUser(stack, 5_000, ['88.00', '66.00']);
    const [unpaid, paying] = user.orderIds as [number, number];
    const opened = await pay(stack, { ...user, orderId: paying }, { method: 4, points: 800, priceFen: 5800 });
    for (const orderId of [unpaid, paying, unpaid]) await runShopCommand(stack.app, { command: 'close-order', order_id: orderId });
    expect((await typesOf(unpaid)).map((e) => [e.type, e.data.closed_attempt, e.data.reason])).toEqual([['order.closed', null, null]]);
    expect((await typesOf(paying)).map((e) => [e.type, e.data.closed_attempt, e.data.reason])).toEqual([['order.closed', opened.outTradeNo, null]]);
  });

  it("the shop's reason for closing is kept on the order and in order.closed, unpaid or paying", async () => {
    await dispatch();
    const user = await givenUser(stack, 5_000, ['88.00', '66.00']);
    const [unpaid, paying] = user.orderIds as [number, number];
    await pay(stack, { ...user, orderId: paying }, { method: 4, points: 800, priceFen: 5800 });
    await runShopCommand(stack.app, { command: 'close-order', order_id: unpaid, reason: '库存不足' });
    await runShopCommand(stack.app, { command: 'close-order', order_id: paying, reason: '商品下架' });
    expect((await typesOf(unpaid)).map((e) => e.data.reason)).toEqual(['库存不足']);
    expect((await typesOf(paying)).map((e) => e.data.reason)).toEqual(['商品下架']);
    const orderItem = async (orderId: number) => (await stack.db.send(new GetCommand({ TableName: TABLE, Key: keys.order(orderId) }))).Item;
    expect(await orderItem(unpaid)).toMatchObject({ status: 'closed', close_reason: '库存不足' });
    expect(await orderItem(paying)).toMatchObject({ status: 'closed', close_reason: '商品下架' });
  });

  it('puts each order in its shard, every shard its own index partition', async () => {
    const user = await givenUser(stack, 0, ['1.00', '2.00', '3.00']);
    for (const orderId of user.orderIds) await runShopCommand(stack.app, { command: 'close-order', order_id: orderId });
    for (const orderId of user.orderIds) {
      const item = await eventItem(`evt_order_closed_${orderId}`);
      expect(item?.gsi1pk).toBe(outboxPartition(orderId % EVENT_SHARDS));
    }
    expect(new Set(user.orderIds.map(eventShard)).size).toBe(3);
  });
});

describe("an event's time is taken after the reads its change was decided from (the outbox sends an order's events by that time)", () => {
  /** A clock that reads T1 until `read()` has been called, then T2: which of the two an event carries says when it was stamped. */
  const phasedClock = () => {
    const t1 = Date.now();
    const phase = { done: false };
    return { now: () => new Date(phase.done ? t1 + 1_000 : t1), read: () => (phase.done = true), after: new Date(t1 + 1_000).toISOString() };
  };
  const createdAt = async (id: string) => (await stack.app.store.getEvent(id))?.event.created_at;

  it('a payment for an order another attempt paid: payment.refund_required after the order was read', async () => {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 });
    expect(await completePayment(stack.app, gatewayPayment(first.outTradeNo, 'wechat'))).toBe('paid');
    const clock = phasedClock();
    const store = storeWith(stack, { getOrder: async (orderId) => stack.app.store.getOrder(orderId).finally(clock.read) });
    expect(await completePayment({ ...stack.app, store, now: clock.now }, gatewayPayment(second.outTradeNo, 'alipay'))).toBe('refund_required');
    expect(await createdAt(`evt_payment_refund_required_${second.outTradeNo}`)).toBe(clock.after);
  });

  it('a late payment whose points are spent meanwhile: payment.refund_required after the order and points were read', async () => {
    const user = await givenUser(stack, 1_000, ['88.00', '9.00']);
    const late = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    await pay(stack, user, { method: 1 }); // supersedes it: its points go back
    await pay(stack, { ...user, orderId: user.orderIds[1] as number }, { method: 3, points: 900, priceFen: 0 });
    const clock = phasedClock();
    const store = storeWith(stack, { loadSettlementContext: async (attempt) => stack.app.store.loadSettlementContext(attempt).finally(clock.read) });
    const payment = { ...gatewayPayment(late.outTradeNo, 'wechat'), amountFen: 8000 };
    expect(await completePayment({ ...stack.app, store, now: clock.now }, payment)).toBe('refund_required');
    expect(await createdAt(`evt_payment_refund_required_${late.outTradeNo}`)).toBe(clock.after);
  });

  it('the shop closes an unpaid order: order.closed after the order was read', async () => {
    const user = await givenUser(stack, 0);
    const clock = phasedClock();
    const store = storeWith(stack, { getOrder: async (orderId) => stack.app.store.getOrder(orderId).finally(clock.read) });
    await runShopCommand({ ...stack.app, store, now: clock.now }, { command: 'close-order', order_id: user.orderId });
    expect(await createdAt(`evt_order_closed_${user.orderId}`)).toBe(clock.after);
  });
});

describe('at volume', () => {
  it('events waiting for a retry are read past: a newer due event in the same shard still goes', async () => {
    await dispatch();
    const user = await givenUser(stack, 0, Array(33).fill('1.00'));
    const [a, b, c] = [user.orderIds[0], user.orderIds[16], user.orderIds[32]] as [number, number, number];
    expect(new Set([a, b, c].map(eventShard)).size).toBe(1);
    for (const orderId of [a, b]) await runShopCommand(stack.app, { command: 'close-order', order_id: orderId });
    const down: EventSink = { target: 'webhook', send: async (events) => events.map(() => 'http 500') };
    await dispatch(0, { sinks: [down] }); // a and b now wait for their retry
    await runShopCommand(stack.app, { command: 'close-order', order_id: c });
    // One due event wanted from the shard: the two waiting ones in front of it do not count.
    await dispatchEvents(deps(), { perShard: 1, deadline: Date.now() + 30_000 });
    expect(receivedOf(`evt_order_closed_${c}`)).toHaveLength(1);
    expect(deliveriesOf(`evt_order_closed_${a}`)).toHaveLength(0);
    await dispatch(2 * MINUTE); // and the others once due: the books stay clean for the next tests
    expect(receivedOf(`evt_order_closed_${a}`)).toHaveLength(1);
  });

  it('a round sends at most roundSize events and records them before the next round', async () => {
    await dispatch();
    const user = await givenUser(stack, 0, ['1.00', '2.00', '3.00', '4.00', '5.00']);
    for (const orderId of user.orderIds) await runShopCommand(stack.app, { command: 'close-order', order_id: orderId });
    const rounds: number[] = [];
    const webhook = deps().sinks[0] as EventSink;
    const counting: EventSink = {
      target: 'webhook',
      send: async (events) => {
        rounds.push(events.length);
        return webhook.send(events);
      },
    };
    const report = await dispatchEvents(deps(0, { sinks: [counting] }), { perShard: 50, deadline: Date.now() + 30_000, roundSize: 2 });
    expect(report.delivered).toBe(5);
    expect(rounds).toEqual([2, 2, 1]);
  });
});

describe('redelivery by hand', () => {
  it('of an unknown event finds nothing and sends nothing', async () => {
    expect(await redeliverEvent(deps(), 'evt_order_paid_nope')).toEqual({});
  });

  it('of a dead event while the endpoint still fails: recorded, still dead, out of the outbox', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await paidByWechat(user);
    const id = `evt_order_paid_${outTradeNo}`;
    const down: EventSink = { target: 'webhook', send: async (events) => events.map(() => 'ECONNREFUSED') };
    for (let attempt = 0, offset = 0; attempt < MAX_DELIVERY_ATTEMPTS; attempt++, offset += 9 * 60 * MINUTE) await dispatch(offset, { sinks: [down] });
    expect((await stack.app.store.getEvent(id))?.status).toBe('dead');
    const { event, result } = await redeliverEvent(deps(0, { sinks: [down] }), id);
    expect(result?.results).toEqual({ webhook: 'ECONNREFUSED' });
    expect(event).toMatchObject({ status: 'dead', attempts: MAX_DELIVERY_ATTEMPTS + 1 });
    expect((await eventItem(id))?.gsi1pk).toBeUndefined();
    await redeliverEvent(deps(), id); // the endpoint is back: delivered, so the books stay clean for the next tests
  });
});
