import type { Fen } from './money';

/** The app's pay_method values, as documented. */
export const PayMethod = {
  WECHAT: 1,
  ALIPAY: 2,
  POINTS: 3,
  WECHAT_WITH_POINTS: 4,
  ALIPAY_WITH_POINTS: 5,
} as const;
export type PayMethod = (typeof PayMethod)[keyof typeof PayMethod];
export const PAY_METHODS: readonly PayMethod[] = Object.values(PayMethod);

/** The payment gateway that takes the cash part of a method; points-only takes none. */
export type Channel = 'wechat' | 'alipay';

export function channelOf(method: PayMethod): Channel | undefined {
  switch (method) {
    case PayMethod.WECHAT:
    case PayMethod.WECHAT_WITH_POINTS:
      return 'wechat';
    case PayMethod.ALIPAY:
    case PayMethod.ALIPAY_WITH_POINTS:
      return 'alipay';
    case PayMethod.POINTS:
      return undefined;
  }
}

export function usesPointsAndCash(method: PayMethod): boolean {
  return method === PayMethod.WECHAT_WITH_POINTS || method === PayMethod.ALIPAY_WITH_POINTS;
}

/**
 * unpaid -> paying (an attempt is open) -> paid; paying -> unpaid when the attempt is released.
 * closed and cancelled are set by the shop, outside this service.
 */
export type OrderStatus = 'unpaid' | 'paying' | 'paid' | 'closed' | 'cancelled';

/**
 * open: waiting for the gateway; paid: money and points taken;
 * superseded: replaced by a newer attempt of the same order; expired: released at its expiry;
 * failed: the gateway refused to create it, released at once;
 * refund_required: the gateway took money for it but the order could not take it (already paid,
 * closed, or the points are gone): a person must refund it (`npm run reconcile` lists them).
 */
export type AttemptStatus = 'open' | 'paid' | 'superseded' | 'expired' | 'failed' | 'refund_required';

/** Attempts whose money may still arrive although their hold is gone. */
export const RELEASED_ATTEMPT_STATUSES: readonly AttemptStatus[] = ['superseded', 'expired', 'failed'];

export interface FreightOption {
  key: number;
  name: string;
  feeFen: Fen;
}

export interface Order {
  orderId: number;
  userId: number;
  goodsName: string;
  goodsFen: Fen;
  freeShipping: boolean;
  freightOptions: FreightOption[];
  status: OrderStatus;
  /** The attempt the order is `paying` with, summarised so a repeat tap needs no extra read. */
  openAttempt?: AttemptSummary;
  /** The attempt that paid it. */
  paidAttempt?: string;
  paidAt?: string;
}

export interface Address {
  addressId: number;
  userId: number;
  name: string;
  phone: string;
  province: string;
  city: string;
  district: string;
  detail: string;
}

/** A user's points, in the three buckets every point is always in exactly one of. */
export interface PointsAccount {
  userId: number;
  available: number;
  held: number;
  spent: number;
}

export interface AttemptSummary {
  outTradeNo: string;
  method: PayMethod;
  cashFen: Fen;
  points: number;
  addressId: number;
  /** What the gateway was told the payment is for: a repeated prepay must send the same. */
  subject: string;
  createdAt: string;
  expiresAt: string;
}

/** One try at paying an order; owns an out_trade_no at its gateway. */
export interface Attempt extends AttemptSummary {
  orderId: number;
  userId: number;
  status: AttemptStatus;
  address: Address;
  paidAt?: string;
  /** The gateway's id of the payment (WeChat transaction_id, Alipay trade_no). */
  transactionId?: string;
}

/** A payment the gateway vouches for: from a verified notification or a signed query answer. */
export interface GatewayPayment {
  channel: Channel;
  outTradeNo: string;
  transactionId: string;
  amountFen: Fen;
  paidAt: string;
}
