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

/** The payment gateways, one per channel. */
/** The largest order or address id: the app sends them as 32-bit integers (and an out_trade_no has room for 10 digits of it). */
export const MAX_ID = 2 ** 31 - 1;

export const CHANNELS = ['wechat', 'alipay'] as const;
export type Channel = (typeof CHANNELS)[number];

/** The payment gateway that takes the cash part of a method; points-only takes none. */
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
 * paid -> refunding (an operator asked for its refund) -> refunded, or back to paid when the refund
 * finally failed. closed and cancelled are set by the shop, outside this service.
 */
export type OrderStatus = 'unpaid' | 'paying' | 'paid' | 'refunding' | 'refunded' | 'closed' | 'cancelled';

/**
 * open: waiting for the gateway; paid: money and points taken;
 * superseded: replaced by a newer attempt of the same order, or released when the switch to one failed
 * at its gateway; expired: released at its expiry; failed: the gateway refused to create it, released at
 * once (written by the code of before 2026-12-01, which wrote an attempt before its prepay);
 * closed: the shop closed or repriced its order while it was open (closed at the gateway, released);
 * refund_required: the gateway took money for it but the order could not take it (already paid,
 * closed, or the points are gone): it is refunded (automatically unless AUTO_REFUND_DUPLICATES is
 * off); refunded: its cash (and points) went back, whether it paid the order or was a refund case.
 */
export type AttemptStatus = 'open' | 'paid' | 'superseded' | 'expired' | 'failed' | 'closed' | 'refund_required' | 'refunded';

/** Attempts whose money may still arrive although their hold is gone. */
export const RELEASED_ATTEMPT_STATUSES: readonly AttemptStatus[] = ['superseded', 'expired', 'failed', 'closed'];

/**
 * Released attempts whose late money may still pay their order, if it can take it. Not `closed`: the
 * shop closed or repriced the order, so that money is a refund case.
 */
export const LATE_PAYABLE_STATUSES: readonly AttemptStatus[] = ['superseded', 'expired', 'failed'];

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
  /** Its latest refund, from the moment one was asked for. */
  refund?: RefundSummary;
}

/** What an order costs, as the shop set it: the quote is computed from it. */
export type OrderPrice = Pick<Order, 'goodsFen' | 'freeShipping' | 'freightOptions'>;

/** Two prices are the same when goods, shipping and every freight option's key and fee are. */
export function samePrice(a: OrderPrice, b: OrderPrice): boolean {
  return (
    a.goodsFen === b.goodsFen &&
    a.freeShipping === b.freeShipping &&
    a.freightOptions.length === b.freightOptions.length &&
    a.freightOptions.every((o, i) => o.key === b.freightOptions[i]?.key && o.feeFen === b.freightOptions[i]?.feeFen)
  );
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
  /** WeChat's prepay_id once known (kept on the order's summary): a repeat tap re-signs it without asking WeChat. */
  prepayId?: string;
  /**
   * The buyer's freight choice (0 free shipping, 1 freight collected on delivery, 2 the merchant's
   * courier) and the freight paid now in the price: the shop ships by them. Attempts written before
   * they were recorded have neither.
   */
  freightKey?: number;
  freightFen?: Fen;
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
  /** Its latest refund's out_refund_no; a new one is numbered after it. */
  refundNo?: string;
  /**
   * The order's price it was quoted at. Money for it pays the order only while the order still costs
   * that; attempts written before this was recorded have none (and are not checked).
   */
  quotedPrice?: OrderPrice;
  /**
   * When the sweeping next looks at it (`lib/domain/checkSchedule.ts`), as stored; undefined once it is
   * done with it, and for an attempt still in a partition of before the due index.
   */
  dueAt?: string;
  /** Checks of it that failed in a row since its last good one (they set the backoff). */
  checkFailures?: number;
}

/** A payment the gateway vouches for: from a verified notification or a signed query answer. */
export interface GatewayPayment {
  channel: Channel;
  outTradeNo: string;
  transactionId: string;
  amountFen: Fen;
  paidAt: string;
}

/**
 * order: a paid order given back in full on an operator's request (cash and points);
 * duplicate: a refund case's cash sent back (its points were never taken).
 */
export type RefundKind = 'order' | 'duplicate';

/** pending: asked, not final at the gateway yet; succeeded and failed are final. */
export type RefundStatus = 'pending' | 'succeeded' | 'failed';

/**
 * Money (and points) going back for one attempt. Its `outRefundNo` is the refund's number at the
 * gateway (WeChat out_refund_no, Alipay out_request_no): every retry sends the same one, so the
 * gateway refunds it once; only after a final failure may a new refund, with a new number, follow.
 */
export interface Refund {
  outRefundNo: string;
  outTradeNo: string;
  orderId: number;
  userId: number;
  kind: RefundKind;
  /** The attempt's channel; none for points only. */
  channel?: Channel;
  cashFen: Fen;
  /** The attempt's whole cash amount: WeChat wants it with every refund. */
  totalFen: Fen;
  points: number;
  /** Why it was asked (an operator's words, or the refund case's reason): shown to the payer by WeChat. */
  reason: string;
  status: RefundStatus;
  /** The gateway's reason for a final failure. */
  failureReason?: string;
  /** The gateway took the request: from then on it is queried rather than sent again. */
  accepted: boolean;
  /** Follow-ups so far (sends or queries); they space the next one out. */
  checks: number;
  /** When the sweeper looks at it next, while pending. */
  nextCheckAt?: string;
  /** The last error of a follow-up, for a person. */
  lastError?: string;
  /** A failed refund a person dealt with outside the gateways: how (`npm run handled`). */
  handledNote?: string;
  /**
   * The cash went back outside the gateways (a bank transfer, say) and a person recorded how: no gateway
   * was asked; recorded succeeded at once, with the points back as for any refund of an order.
   */
  repaidOutside?: string;
  /**
   * When the ABNORMAL migration made it pending again (README "When a refund failed"): the
   * shop was told of its first failure already, so a second one is another event.
   */
  reopenedAt?: string;
  createdAt: string;
  refundedAt?: string;
}

/** What the order keeps of its latest refund, so the status answer needs no extra read. */
export type RefundSummary = Pick<Refund, 'outRefundNo' | 'status' | 'cashFen' | 'points' | 'refundedAt'>;

/** What a gateway says about a refund: from a query, the refund call's own answer or a verified notification. */
export interface GatewayRefundReport {
  channel: Channel;
  outRefundNo: string;
  outTradeNo: string;
  refundFen: Fen;
  /** abnormal: WeChat took it but the payer's account cannot receive it; not final (see RefundState). */
  state: 'succeeded' | 'failed' | 'abnormal';
  refundedAt?: string;
  failureReason?: string;
}
