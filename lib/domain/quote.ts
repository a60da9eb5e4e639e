import { PayError } from './errors';
import { type Order, PayMethod, usesPointsAndCash } from './model';
import { type Fen, fenToYuan } from './money';

/** What the app asked to pay, already parsed into integers. */
export interface PayRequest {
  method: PayMethod;
  priceFen: Fen;
  points: number;
  freightMode: number;
  freightKey: number;
}

/** What the server computes the order costs now and how the user's request splits it. */
export interface Quote {
  goodsFen: Fen;
  /** The buyer's freight choice: NO_FREIGHT for free shipping, else a FreightKey. */
  freightKey: number;
  /** Freight paid now (a merchant courier's fee; nothing for free shipping or freight collected on delivery). */
  freightFen: Fen;
  totalFen: Fen;
  /** Points that would pay the whole total. */
  requiredPoints: number;
  method: PayMethod;
  cashFen: Fen;
  points: number;
}

export const FreightMode = { FREE: 1, NOT_FREE: 2 } as const;
export const FreightKey = { COLLECT_ON_DELIVERY: 1, MERCHANT_COURIER: 2 } as const;
/** The freight choice of a free-shipping order: none to make. */
export const NO_FREIGHT = 0;

/** Refuses an order that cannot be paid now, whatever the request says. */
export function assertPayable(order: Order): void {
  switch (order.status) {
    case 'unpaid':
    case 'paying':
      return;
    case 'paid':
      throw new PayError('ORDER_ALREADY_PAID');
    case 'refunding':
      throw new PayError('ORDER_REFUNDING');
    case 'refunded':
      throw new PayError('ORDER_REFUNDED');
    case 'closed':
      throw new PayError('ORDER_CLOSED');
    case 'cancelled':
      throw new PayError('ORDER_CANCELLED');
  }
}

/** Freight due now: free shipping and collect-on-delivery take nothing now. */
export function freightDueNow(order: Order, freightMode: number, freightKey: number): Fen {
  if (order.freeShipping) {
    if (freightMode !== FreightMode.FREE) throw new PayError('FREIGHT_MODE_INVALID', '该订单包邮,freight_mode应为1');
    return 0;
  }
  if (freightMode !== FreightMode.NOT_FREE) throw new PayError('FREIGHT_MODE_INVALID', '该订单不包邮,freight_mode应为2');
  if (freightKey !== FreightKey.COLLECT_ON_DELIVERY && freightKey !== FreightKey.MERCHANT_COURIER) {
    throw new PayError('FREIGHT_OPTION_INVALID', 'freight_json_arr_key应为1(到付)或2(商家自选)');
  }
  const option = order.freightOptions.find((o) => o.key === freightKey);
  if (!option) throw new PayError('FREIGHT_OPTION_INVALID', '该订单不支持所选运费方式');
  return freightKey === FreightKey.COLLECT_ON_DELIVERY ? 0 : option.feeFen;
}

/**
 * The pay rules of the API document, computed from the stored order:
 * points that cover the total must pay it alone (method 3); otherwise the cash part goes to a
 * gateway, with 1..available points on top for the mixed methods. The request must match the
 * server's figures exactly, so a user is never charged an amount the app did not show.
 *
 * @param availablePoints points the user could put on this order (their available points plus
 *   any this order's own open attempt holds, since a new attempt would release those)
 */
export function quoteOrder(order: Order, request: PayRequest, availablePoints: number, fenPerPoint: number): Quote {
  assertPayable(order);
  const freightFen = freightDueNow(order, request.freightMode, request.freightKey);
  const totalFen = order.goodsFen + freightFen;
  const requiredPoints = Math.ceil(totalFen / fenPerPoint);
  const freightKey = order.freeShipping ? NO_FREIGHT : request.freightKey;
  const base = { goodsFen: order.goodsFen, freightKey, freightFen, totalFen, requiredPoints, method: request.method };

  let points: number;
  if (availablePoints >= requiredPoints) {
    if (request.method !== PayMethod.POINTS) throw new PayError('PAY_METHOD_NOT_ALLOWED', `需${requiredPoints}积分`);
    points = requiredPoints;
  } else if (request.method === PayMethod.POINTS) {
    throw new PayError('INTEGRAL_NOT_ENOUGH', `需${requiredPoints}积分,可用${availablePoints}积分`);
  } else if (usesPointsAndCash(request.method)) {
    if (availablePoints < 1) throw new PayError('INTEGRAL_INVALID', '没有可用积分,请选择微信或支付宝支付');
    if (request.points < 1 || request.points > availablePoints) {
      throw new PayError('INTEGRAL_INVALID', `可抵扣1至${availablePoints}积分`);
    }
    points = request.points;
  } else {
    points = 0;
  }

  if (request.points !== points) throw new PayError('INTEGRAL_MISMATCH', `应付${points}积分`);
  // Points-only pays nothing in cash even when ceil() made the points worth a little more than the total.
  const cashFen = request.method === PayMethod.POINTS ? 0 : totalFen - points * fenPerPoint;
  if (request.priceFen !== cashFen) throw new PayError('PRICE_MISMATCH', `应付${fenToYuan(cashFen)}元`);
  return { ...base, cashFen, points };
}
