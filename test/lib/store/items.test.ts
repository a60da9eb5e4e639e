import { dueShard, queryTimes } from '../../../lib/domain/checkSchedule';
import type { ShopEvent } from '../../../lib/domain/events';
import type { Attempt, Order, Refund } from '../../../lib/domain/model';
import {
  accountItem,
  addressItem,
  attemptItem,
  dueIndex,
  eventItem,
  fromRefundSummary,
  fromSummary,
  ledgerItem,
  orderItem,
  refundItem,
  sessionItem,
  toAccount,
  toAddress,
  toAttempt,
  toOrder,
  toOutboxEvent,
  toRefund,
} from '../../../lib/store/items';
import {
  duePartition,
  dueSortKey,
  ENTITY,
  hashToken,
  INDEX_PARTITION,
  keys,
  LEDGER_PREFIX,
  OPEN_ATTEMPTS_INDEX,
  outboxPartition,
  outboxSortKey,
  refundIndexSortKey,
  sweepLeaseKey,
  userPartition,
} from '../../../lib/store/keys';

/**
 * The table is live once deployed: every key and attribute name below is read by items already written,
 * so a change to one is a migration (README, "Changing the table once it is live"), never an edit. These tests spell
 * the layout out, and read back each kind of item exactly as it was written.
 */

const address = { addressId: 7, userId: 42, name: '张三', phone: '13800000000', province: '广东省', city: '深圳市', district: '南山区', detail: '科技园 1 号' };
const options = [
  { key: 1, name: '到付', feeFen: 0 },
  { key: 2, name: '顺丰', feeFen: 1200 },
];

describe('keys: the layout of the live table', () => {
  it('names every item by its partition and sort key', () => {
    expect(keys.session('abc')).toEqual({ pk: 'SESSION#abc', sk: 'SESSION' });
    expect(keys.account(42)).toEqual({ pk: 'USER#42', sk: 'ACCOUNT' });
    expect(keys.address(42, 7)).toEqual({ pk: 'USER#42', sk: 'ADDRESS#7' });
    expect(keys.ledger(42, '9T1', 'hold')).toEqual({ pk: 'USER#42', sk: 'LEDGER#9T1#hold' });
    expect(keys.shopLedger(42, 'e-1')).toEqual({ pk: 'USER#42', sk: 'LEDGER#SHOP#e-1' });
    expect(keys.order(9)).toEqual({ pk: 'ORDER#9', sk: 'ORDER' });
    expect(keys.attempt('9T1')).toEqual({ pk: 'ATTEMPT#9T1', sk: 'ATTEMPT' });
    expect(keys.gatewayCheck('9T1')).toEqual({ pk: 'ATTEMPT#9T1', sk: 'CHECK' });
    expect(keys.refund('9T1R1')).toEqual({ pk: 'REFUND#9T1R1', sk: 'REFUND' });
    expect(keys.event('evt_1')).toEqual({ pk: 'EVENT#evt_1', sk: 'EVENT' });
    expect(keys.paymentConflict('9T1', '4200')).toEqual({ pk: 'CONFLICT#9T1', sk: 'TRANSACTION#4200' });
    expect(sweepLeaseKey(3)).toEqual({ pk: 'SWEEP#3', sk: 'LEASE' });
    expect(userPartition(42)).toBe('USER#42');
    expect(LEDGER_PREFIX).toBe('LEDGER#');
  });

  it('the index partitions are padded to a fixed width, and the sort keys are `<time>#<id>`', () => {
    expect([duePartition(0), duePartition(7), duePartition(127)]).toEqual(['DUE#000', 'DUE#007', 'DUE#127']);
    expect([outboxPartition(0), outboxPartition(15)]).toEqual(['OUTBOX#00', 'OUTBOX#15']);
    expect(dueSortKey('2026-11-30T01:00:00.000Z', '9T1')).toBe('2026-11-30T01:00:00.000Z#9T1');
    expect(outboxSortKey({ created_at: '2026-11-30T01:00:00.000Z', id: 'evt_1' })).toBe('2026-11-30T01:00:00.000Z#evt_1');
    expect(refundIndexSortKey({ nextCheckAt: '2026-11-30T01:00:00.000Z', outRefundNo: '9T1R1' })).toBe('2026-11-30T01:00:00.000Z#9T1R1');
    expect(dueIndex('9T1', '2026-11-30T01:00:00.000Z')).toEqual({ gsi1pk: duePartition(dueShard('9T1')), gsi1sk: '2026-11-30T01:00:00.000Z#9T1' });
  });

  it('the one index, and its partitions that are not shards', () => {
    // Renaming a GSI means deleting and rebuilding it on the live table.
    expect(OPEN_ATTEMPTS_INDEX).toBe('open-attempts');
    expect(INDEX_PARTITION).toEqual({ refund: 'REFUND', legacyOpen: 'OPEN', legacyWatch: 'WATCH' });
  });

  it('keeps a token only as its SHA-256, in hex', () => {
    // The published test vector of SHA-256("abc").
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashToken('令牌')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('every kind of item says what it is', () => {
    expect(ENTITY).toEqual({
      session: 'session',
      account: 'account',
      address: 'address',
      ledger: 'ledger',
      order: 'order',
      attempt: 'attempt',
      refund: 'refund',
      event: 'event',
      paymentConflict: 'payment_conflict',
      gatewayCheck: 'gateway_check',
      sweepLease: 'sweep_lease',
    });
  });
});

describe('items: written and read back', () => {
  const created = '2026-11-30T01:00:00.000Z';
  const open: Attempt = {
    outTradeNo: '9T17644644000001234',
    orderId: 9,
    userId: 42,
    method: 4,
    cashFen: 8000,
    points: 800,
    addressId: 7,
    address,
    subject: '测试商品',
    quotedPrice: { goodsFen: 8800, freeShipping: false, freightOptions: options },
    status: 'open',
    createdAt: created,
    expiresAt: '2026-11-30T01:30:00.000Z',
  };

  it('an open attempt is written into its due shard at its first query, and read back as written', () => {
    const item = attemptItem(open);
    const firstQuery = new Date(queryTimes(open)[0]).toISOString();
    expect(item).toMatchObject({ ...keys.attempt(open.outTradeNo), entity: 'attempt', ...dueIndex(open.outTradeNo, firstQuery) });
    expect(toAttempt(item)).toEqual({ ...open, dueAt: firstQuery });
  });

  it('a paid attempt, with every field it can have, is read back as written and is in no index', () => {
    const paid: Attempt = { ...open, status: 'paid', paidAt: '2026-11-30T01:05:00.000Z', prepayId: 'wx-prepay' };
    const item = attemptItem(paid);
    expect(item).not.toHaveProperty('gsi1pk');
    expect(item).not.toHaveProperty('prepay_id'); // kept on the order's summary, not the attempt
    const stored = { ...item, prepay_id: 'wx-prepay', transaction_id: '4200-1', refund_no: `${open.outTradeNo}R1`, check_failures: 2 };
    expect(toAttempt(stored)).toEqual({ ...paid, transactionId: '4200-1', refundNo: `${open.outTradeNo}R1`, checkFailures: 2 });
  });

  it('an attempt written in any state but open is in no index: only open attempts are scheduled when written', () => {
    for (const status of ['paid', 'expired', 'superseded', 'failed'] as const) expect(attemptItem({ ...open, status })).not.toHaveProperty('gsi1pk');
  });

  it('an attempt from before quoted prices and due shards reads without them: no price, no due time', () => {
    const { quoted_price: _price, ...old } = attemptItem(open);
    const legacy = { ...old, gsi1pk: 'OPEN', gsi1sk: `${open.expiresAt}#${open.outTradeNo}` };
    const read = toAttempt(legacy);
    expect(read.quotedPrice).toBeUndefined();
    expect(read.dueAt).toBeUndefined();
    expect(toAttempt({ ...old, gsi1pk: undefined, gsi1sk: undefined }).dueAt).toBeUndefined();
  });

  it('an order with its open attempt, its prepay id and its latest refund', () => {
    const order: Order = {
      orderId: 9,
      userId: 42,
      goodsName: '测试商品',
      goodsFen: 8800,
      freeShipping: false,
      freightOptions: options,
      status: 'paying',
    };
    const item = orderItem(order, created);
    expect(item).toEqual({
      ...keys.order(9),
      entity: 'order',
      order_id: 9,
      user_id: 42,
      goods_name: '测试商品',
      goods_fen: 8800,
      free_shipping: false,
      freight_options: [
        { key: 1, name: '到付', fee_fen: 0 },
        { key: 2, name: '顺丰', fee_fen: 1200 },
      ],
      status: 'paying',
      updated_at: created,
    });
    expect(toOrder(item)).toEqual(order);
    const refund = { outRefundNo: `${open.outTradeNo}R1`, status: 'succeeded' as const, cashFen: 8000, points: 800, refundedAt: '2026-11-30T02:00:00.000Z' };
    const paying = {
      ...item,
      open_attempt: { ...fromSummary(open), prepay_id: 'wx-prepay' },
      paid_attempt: 'x',
      paid_at: 'y',
      refund: fromRefundSummary(refund),
    };
    const { address: _a, orderId: _o, userId: _u, status: _s, quotedPrice: _q, ...summary } = open;
    expect(toOrder(paying)).toEqual({ ...order, openAttempt: { ...summary, prepayId: 'wx-prepay' }, paidAttempt: 'x', paidAt: 'y', refund });
    expect(fromRefundSummary({ ...refund, status: 'pending', refundedAt: undefined })).not.toHaveProperty('refunded_at');
    const { freight_options: _options, ...withoutOptions } = item;
    expect(toOrder(withoutOptions).freightOptions).toEqual([]); // an item edited by hand: none, never undefined
    expect(orderItem({ ...order, status: 'paid', paidOutside: true }, created)).toMatchObject({ status: 'paid', paid_outside: true });
    expect(orderItem(order, created)).not.toHaveProperty('paid_outside');
  });

  it('a pending refund is in the follow-up index at its next check; a final one is not; what it lacks reads as its default', () => {
    const pending: Refund = {
      outRefundNo: `${open.outTradeNo}R1`,
      outTradeNo: open.outTradeNo,
      orderId: 9,
      userId: 42,
      kind: 'order',
      channel: 'wechat',
      cashFen: 8000,
      totalFen: 8000,
      points: 800,
      reason: '用户取消',
      status: 'pending',
      accepted: true,
      checks: 2,
      nextCheckAt: '2026-11-30T01:10:00.000Z',
      createdAt: created,
    };
    const item = refundItem(pending);
    expect(item).toMatchObject({
      ...keys.refund(pending.outRefundNo),
      entity: 'refund',
      gsi1pk: 'REFUND',
      gsi1sk: `2026-11-30T01:10:00.000Z#${pending.outRefundNo}`,
    });
    expect(toRefund(item)).toEqual(pending);
    const failed = { ...pending, status: 'failed' as const, nextCheckAt: undefined };
    expect(refundItem(failed)).not.toHaveProperty('gsi1pk');
    expect(refundItem({ ...pending, nextCheckAt: undefined })).not.toHaveProperty('gsi1pk');
    expect(refundItem({ ...pending, status: 'succeeded' })).not.toHaveProperty('gsi1pk'); // final, though a next check is set
    const stored = { ...refundItem(failed), failure_reason: 'ABNORMAL', last_error: 'HTTP 500', refunded_at: 'z' };
    expect(toRefund(stored)).toEqual({ ...failed, failureReason: 'ABNORMAL', lastError: 'HTTP 500', refundedAt: 'z' });
    const outside = { ...pending, status: 'succeeded' as const, nextCheckAt: undefined, refundedAt: created, repaidOutside: '银行转账 流水号 88123' };
    expect(refundItem(outside)).toMatchObject({ repaid_outside: '银行转账 流水号 88123' });
    expect(toRefund(refundItem(outside))).toEqual(outside);
    const { accepted: _accepted, checks: _checks, ...old } = item;
    expect(toRefund(old)).toMatchObject({ accepted: false, checks: 0 });
  });

  it("an event is pending in its order's outbox shard, its body the exact text delivered", () => {
    const event: ShopEvent = { id: 'evt_order_paid_9T1', type: 'order.paid', created_at: created, data: { order_id: 21, user_id: 42, pay_price: '80.00' } };
    const item = eventItem(event);
    expect(item).toEqual({
      ...keys.event(event.id),
      entity: 'event',
      event_id: event.id,
      type: 'order.paid',
      order_id: 21,
      created_at: created,
      body: JSON.stringify(event),
      status: 'pending',
      delivered_to: [],
      attempts: 0,
      deliveries: [],
      next_attempt_at: created,
      gsi1pk: 'OUTBOX#05',
      gsi1sk: `${created}#${event.id}`,
    });
    expect(toOutboxEvent(item)).toEqual({
      event,
      body: JSON.stringify(event),
      status: 'pending',
      deliveredTo: [],
      attempts: 0,
      deliveries: [],
      nextAttemptAt: created,
    });
    const { delivered_to: _to, deliveries: _d, next_attempt_at: _next, ...bare } = item;
    expect(toOutboxEvent(bare)).toMatchObject({ deliveredTo: [], deliveries: [], nextAttemptAt: undefined });
  });

  it('accounts, addresses, sessions and ledger entries', () => {
    expect(accountItem(42, 500, created)).toEqual({
      ...keys.account(42),
      entity: 'account',
      user_id: 42,
      integral_available: 500,
      integral_held: 0,
      integral_spent: 0,
      integral_credited: 500,
      updated_at: created,
    });
    expect(toAccount(accountItem(42, 500, created))).toEqual({ userId: 42, available: 500, held: 0, spent: 0 });
    expect(addressItem(address)).toMatchObject({ ...keys.address(42, 7), entity: 'address', address_id: 7, user_id: 42, name: '张三' });
    expect(toAddress(addressItem(address))).toEqual(address);
    expect(sessionItem('hash', 42, created)).toEqual({ ...keys.session('hash'), entity: 'session', user_id: 42, expires_at: created });
    expect(ledgerItem({ userId: 42, orderId: 9, outTradeNo: '9T1', kind: 'capture', points: 800 }, created)).toEqual({
      ...keys.ledger(42, '9T1', 'capture'),
      entity: 'ledger',
      user_id: 42,
      order_id: 9,
      out_trade_no: '9T1',
      kind: 'capture',
      points: 800,
      created_at: created,
    });
  });
});
