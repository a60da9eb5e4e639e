import { type ErrorCode, PayError } from '../../../lib/domain/errors';
import { type Order, PayMethod } from '../../../lib/domain/model';
import { type PayRequest, quoteOrder } from '../../../lib/domain/quote';

const order = (over: Partial<Order> = {}): Order => ({
  orderId: 501,
  userId: 1001,
  goodsName: '保温杯',
  goodsFen: 8800,
  freeShipping: false,
  freightOptions: [
    { key: 1, name: '到付', feeFen: 0 },
    { key: 2, name: '商家自选', feeFen: 1200 },
  ],
  status: 'unpaid',
  ...over,
});
const req = (over: Partial<PayRequest> = {}): PayRequest => ({ method: PayMethod.WECHAT, priceFen: 10000, points: 0, freightMode: 2, freightKey: 2, ...over });

/** The refusal's whole message, as the app shows it: the code's text and the detail that says what to send. */
function refusalMessage(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof PayError) return error.message;
    throw error;
  }
}

function refusal(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof PayError) return error.code;
    throw error;
  }
}

describe('order state', () => {
  it.each([
    ['paid', 'ORDER_ALREADY_PAID'],
    ['refunding', 'ORDER_REFUNDING'],
    ['refunded', 'ORDER_REFUNDED'],
    ['closed', 'ORDER_CLOSED'],
    ['cancelled', 'ORDER_CANCELLED'],
  ] as const)('%s order is refused with %s', (status, code) => {
    expect(refusal(() => quoteOrder(order({ status }), req(), 0, 1))).toBe(code);
  });

  it('an order being paid can be quoted again (the repeat tap)', () => {
    expect(quoteOrder(order({ status: 'paying' }), req(), 0, 1).cashFen).toBe(10000);
  });
});

describe('freight', () => {
  it('merchant courier adds the option fee', () => {
    expect(quoteOrder(order(), req(), 0, 1)).toMatchObject({ freightFen: 1200, totalFen: 10000, cashFen: 10000 });
  });

  it('collect on delivery pays no freight now, whatever its fee', () => {
    const o = order({ freightOptions: [{ key: 1, name: '到付', feeFen: 999 }] });
    expect(quoteOrder(o, req({ freightKey: 1, priceFen: 8800 }), 0, 1)).toMatchObject({ freightFen: 0, totalFen: 8800 });
  });

  it('free shipping takes freight_mode 1 and nothing else', () => {
    const o = order({ freeShipping: true });
    expect(quoteOrder(o, req({ freightMode: 1, freightKey: 0, priceFen: 8800 }), 0, 1).totalFen).toBe(8800);
    expect(refusal(() => quoteOrder(o, req({ freightMode: 2, freightKey: 2, priceFen: 10000 }), 0, 1))).toBe('FREIGHT_MODE_INVALID');
  });

  it('a not-free order refuses freight_mode 1 (no sneaking free shipping)', () => {
    expect(refusal(() => quoteOrder(order(), req({ freightMode: 1, priceFen: 8800 }), 0, 1))).toBe('FREIGHT_MODE_INVALID');
  });

  it.each([0, 3, 7])('freight_json_arr_key %p is refused', (freightKey) => {
    expect(refusal(() => quoteOrder(order(), req({ freightKey }), 0, 1))).toBe('FREIGHT_OPTION_INVALID');
  });

  it('a key the order does not offer is refused', () => {
    const o = order({ freightOptions: [{ key: 1, name: '到付', feeFen: 0 }] });
    expect(refusal(() => quoteOrder(o, req({ freightKey: 2 }), 0, 1))).toBe('FREIGHT_OPTION_INVALID');
  });
});

describe('points cover the total: only points', () => {
  it('method 3 pays exactly the required points and no cash', () => {
    expect(quoteOrder(order(), req({ method: PayMethod.POINTS, points: 10000, priceFen: 0 }), 10000, 1)).toMatchObject({
      requiredPoints: 10000,
      points: 10000,
      cashFen: 0,
    });
  });

  it.each([PayMethod.WECHAT, PayMethod.ALIPAY, PayMethod.WECHAT_WITH_POINTS, PayMethod.ALIPAY_WITH_POINTS])('method %p is refused', (method) => {
    expect(refusal(() => quoteOrder(order(), req({ method, points: 1, priceFen: 9999 }), 10000, 1))).toBe('PAY_METHOD_NOT_ALLOWED');
  });

  it('the points must be exactly the required number', () => {
    expect(refusal(() => quoteOrder(order(), req({ method: PayMethod.POINTS, points: 9999, priceFen: 0 }), 20000, 1))).toBe('INTEGRAL_MISMATCH');
    expect(refusal(() => quoteOrder(order(), req({ method: PayMethod.POINTS, points: 10001, priceFen: 0 }), 20000, 1))).toBe('INTEGRAL_MISMATCH');
  });

  it('a cash price on a points-only pay is refused', () => {
    expect(refusal(() => quoteOrder(order(), req({ method: PayMethod.POINTS, points: 10000, priceFen: 1 }), 20000, 1))).toBe('PRICE_MISMATCH');
  });

  it('rounds required points up when a point is worth several fen, and still charges no cash', () => {
    // 100.01 yuan at 2 fen a point: 5000.5 -> 5001 points
    const o = order({ goodsFen: 8801 });
    expect(quoteOrder(o, req({ method: PayMethod.POINTS, points: 5001, priceFen: 0 }), 5001, 2)).toMatchObject({ requiredPoints: 5001, cashFen: 0 });
    expect(refusal(() => quoteOrder(o, req({ method: PayMethod.POINTS, points: 5001, priceFen: 0 }), 5000, 2))).toBe('INTEGRAL_NOT_ENOUGH');
  });

  it('rounds up even a small remainder, where rounding to the nearest would go down', () => {
    // 100.01 yuan at 10 fen a point: 1000.1 -> 1001 points (nearest would be 1000 and lose a fen)
    const o = order({ goodsFen: 8801 });
    expect(quoteOrder(o, req({ method: PayMethod.POINTS, points: 1001, priceFen: 0 }), 1001, 10)).toMatchObject({ requiredPoints: 1001 });
    expect(refusal(() => quoteOrder(o, req({ method: PayMethod.POINTS, points: 1000, priceFen: 0 }), 1001, 10))).toBe('INTEGRAL_MISMATCH');
  });
});

describe('points do not cover the total: a gateway is needed', () => {
  it('method 3 is refused', () => {
    expect(refusal(() => quoteOrder(order(), req({ method: PayMethod.POINTS, points: 9999, priceFen: 0 }), 9999, 1))).toBe('INTEGRAL_NOT_ENOUGH');
  });

  it.each([PayMethod.WECHAT, PayMethod.ALIPAY])('method %p takes the whole total in cash and no points', (method) => {
    expect(quoteOrder(order(), req({ method }), 500, 1)).toMatchObject({ cashFen: 10000, points: 0 });
    expect(refusal(() => quoteOrder(order(), req({ method, points: 1, priceFen: 9999 }), 500, 1))).toBe('INTEGRAL_MISMATCH');
  });

  it.each([PayMethod.WECHAT_WITH_POINTS, PayMethod.ALIPAY_WITH_POINTS])('method %p takes 1..available points, the rest in cash', (method) => {
    expect(quoteOrder(order(), req({ method, points: 1, priceFen: 9999 }), 500, 1)).toMatchObject({ points: 1, cashFen: 9999 });
    expect(quoteOrder(order(), req({ method, points: 500, priceFen: 9500 }), 500, 1)).toMatchObject({ points: 500, cashFen: 9500 });
    expect(refusal(() => quoteOrder(order(), req({ method, points: 0, priceFen: 10000 }), 500, 1))).toBe('INTEGRAL_INVALID');
    expect(refusal(() => quoteOrder(order(), req({ method, points: 501, priceFen: 9499 }), 500, 1))).toBe('INTEGRAL_INVALID');
    expect(refusal(() => quoteOrder(order(), req({ method, points: 1, priceFen: 9998 }), 0, 1))).toBe('INTEGRAL_INVALID');
  });

  it('mixed methods value points at INTEGRAL_FEN_PER_POINT', () => {
    // 100 fen a point: 99 points = 99.00 yuan, 1.00 yuan left in cash
    expect(quoteOrder(order(), req({ method: PayMethod.WECHAT_WITH_POINTS, points: 99, priceFen: 100 }), 99, 100)).toMatchObject({ cashFen: 100 });
  });

  it('refuses a price that differs by one fen either way', () => {
    expect(refusal(() => quoteOrder(order(), req({ priceFen: 9999 }), 0, 1))).toBe('PRICE_MISMATCH');
    expect(refusal(() => quoteOrder(order(), req({ priceFen: 10001 }), 0, 1))).toBe('PRICE_MISMATCH');
  });

  it('the mismatch message tells the amount the server expects', () => {
    expect(() => quoteOrder(order(), req({ priceFen: 1 }), 0, 1)).toThrow('应付100.00元');
  });

  it('the cash part of a mixed pay is always above zero', () => {
    for (const fenPerPoint of [1, 3, 7, 100]) {
      for (const goodsFen of [1, 99, 100, 101, 8800]) {
        const o = order({ goodsFen, freeShipping: true });
        const required = Math.ceil(goodsFen / fenPerPoint);
        const available = required - 1;
        if (available < 1) continue;
        const q = quoteOrder(
          o,
          { method: PayMethod.ALIPAY_WITH_POINTS, points: available, priceFen: goodsFen - available * fenPerPoint, freightMode: 1, freightKey: 0 },
          available,
          fenPerPoint,
        );
        expect(q.cashFen).toBeGreaterThan(0);
      }
    }
  });
});

describe('what each refusal tells the user to send instead', () => {
  const free = order({ freeShipping: true });
  it.each<[string, () => unknown, string]>([
    [
      'freight_mode 2 on a free-shipping order',
      () => quoteOrder(free, req({ freightMode: 2, priceFen: 8800 }), 0, 1),
      '配送方式不正确(该订单包邮,freight_mode应为1)',
    ],
    ['freight_mode 1 on an order with freight', () => quoteOrder(order(), req({ freightMode: 1 }), 0, 1), '配送方式不正确(该订单不包邮,freight_mode应为2)'],
    [
      'a freight key that is neither 1 nor 2, even one the order lists',
      () => quoteOrder(order({ freightOptions: [{ key: 3, name: '自提', feeFen: 0 }] }), req({ freightKey: 3 }), 0, 1),
      '运费方式不存在(freight_json_arr_key应为1(到付)或2(商家自选))',
    ],
    [
      'a freight key the order does not offer',
      () => quoteOrder(order({ freightOptions: [] }), req({ freightKey: 2 }), 0, 1),
      '运费方式不存在(该订单不支持所选运费方式)',
    ],
    ['cash when the points cover it', () => quoteOrder(order(), req(), 20_000, 1), '积分足够支付,请使用积分支付(需10000积分)'],
    [
      'points only when they do not cover it',
      () => quoteOrder(order(), req({ method: PayMethod.POINTS, priceFen: 0, points: 500 }), 500, 1),
      '积分不足,请选择微信或支付宝支付(需10000积分,可用500积分)',
    ],
    [
      'points and cash with no points at all',
      () => quoteOrder(order(), req({ method: PayMethod.WECHAT_WITH_POINTS, points: 1, priceFen: 9999 }), 0, 1),
      '抵扣积分数量不正确(没有可用积分,请选择微信或支付宝支付)',
    ],
    [
      'more points than available',
      () => quoteOrder(order(), req({ method: PayMethod.WECHAT_WITH_POINTS, points: 501, priceFen: 9499 }), 500, 1),
      '抵扣积分数量不正确(可抵扣1至500积分)',
    ],
    ['points with a cash-only method', () => quoteOrder(order(), req({ points: 100, priceFen: 9900 }), 500, 1), '支付积分与订单应付积分不一致(应付0积分)'],
  ])('%s', (_case, quote, message) => {
    expect(refusalMessage(quote)).toBe(message);
  });
});
