import { EVENT_SHARDS, eventShard, eventShardsOf, orderPaidEvent } from '../../../lib/domain/events';
import type { Attempt } from '../../../lib/domain/model';

/** A WeChat + points attempt of order 501, paid 100.00 yuan with 300 points. */
function attempt(over: Partial<Attempt> = {}): Attempt {
  return {
    outTradeNo: '501T1',
    orderId: 501,
    userId: 7,
    method: 4,
    cashFen: 10_000,
    points: 300,
    addressId: 11,
    address: { addressId: 11, userId: 7, name: '张三', phone: '13800000000', province: '广东省', city: '深圳市', district: '南山区', detail: '科技园' },
    subject: 'g',
    status: 'paid',
    createdAt: '2026-11-30T00:00:00.000Z',
    expiresAt: '2026-11-30T00:30:00.000Z',
    ...over,
  };
}
const payment = { channel: 'wechat' as const, outTradeNo: '501T1', transactionId: 'wx-1', amountFen: 10_000, paidAt: '2026-11-30T00:01:00.000Z' };

describe('order.paid tells the shop how to ship', () => {
  it.each([
    ["the merchant's courier, its fee in the price", { freightKey: 2, freightFen: 1_200 }, 2, '12.00'],
    ['freight collected on delivery: nothing of it in the price', { freightKey: 1, freightFen: 0 }, 1, '0.00'],
    ['free shipping: no choice', { freightKey: 0, freightFen: 0 }, 0, '0.00'],
    ['an attempt of before the choice was recorded: unknown', {}, null, null],
  ] as const)('%s', (_case, over, freightKey, freightPrice) => {
    expect(orderPaidEvent(attempt(over), payment, '2026-11-30T00:01:01.000Z')).toEqual({
      id: 'evt_order_paid_501T1',
      type: 'order.paid',
      created_at: '2026-11-30T00:01:01.000Z',
      data: {
        order_id: 501,
        user_id: 7,
        out_trade_no: '501T1',
        pay_method: 4,
        pay_price: '100.00',
        pay_integral: 300,
        address_id: 11,
        freight_key: freightKey,
        freight_price: freightPrice,
        transaction_id: 'wx-1',
        paid_at: '2026-11-30T00:01:00.000Z',
      },
    });
  });
});

describe('dispatch groups', () => {
  it('split the 16 outbox shards between them: each shard in exactly one group, so one run at a time delivers an order', () => {
    for (const groups of [1, 2, 4, 16]) {
      const all = Array.from({ length: groups }, (_, group) => eventShardsOf(group, groups)).flat();
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: EVENT_SHARDS }, (_, shard) => shard));
    }
    expect(eventShardsOf(1, 4)).toEqual([1, 5, 9, 13]);
    expect(eventShardsOf(eventShard(4_321), 16)).toEqual([eventShard(4_321)]);
  });
});
