import type { Address, Attempt, AttemptStatus, AttemptSummary, Order, PointsAccount } from '../domain/model';

/** Who a token belongs to, and until when. */
export interface Session {
  userId: number;
  expiresAt: string;
}

/** Everything one pay request reads, in one round trip. Missing parts are undefined. */
export interface PayContext {
  order?: Order;
  address?: Address;
  account?: PointsAccount;
}

/**
 * One conditional write that opens an attempt (holding its points) or, for points-only, pays the
 * order at once (spending them); when `previous` is given, the order's open attempt is superseded
 * and its hold released in the same write.
 */
export interface AttemptChange {
  attempt: Attempt;
  previous?: AttemptSummary;
  now: string;
}

/** The write lost against a concurrent change: `points` the balance, `state` the order or attempt. */
export class WriteConflict extends Error {
  constructor(readonly part: 'points' | 'state') {
    super(`conditional write failed on ${part}`);
    this.name = 'WriteConflict';
  }
}

/** The persistence port of the pay flow; `DynamoPayStore` is its adapter. */
export interface PayStore {
  findSession(token: string): Promise<Session | undefined>;
  loadPayContext(userId: number, orderId: number, addressId: number): Promise<PayContext>;
  /** @throws WriteConflict when the order, the attempt or the points moved since they were read */
  commitAttempt(change: AttemptChange): Promise<void>;
  /**
   * Ends an open attempt without payment: hold back to available, order back to unpaid.
   * Returns false (and changes nothing) when the attempt is no longer open.
   */
  releaseAttempt(attempt: Attempt, status: Extract<AttemptStatus, 'failed' | 'expired'>, now: string): Promise<boolean>;
  getAttempt(outTradeNo: string): Promise<Attempt | undefined>;
}
