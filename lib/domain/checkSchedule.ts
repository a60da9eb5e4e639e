import { type AttemptStatus, RELEASED_ATTEMPT_STATUSES } from './model';

/**
 * When the sweeping asks an attempt's gateway about it, so that every attempt is looked at on time
 * and no more often than that (docs/capacity.md):
 * - an open attempt is queried `firstQueryMs` after it was created, then at even gaps of at most
 *   `maxQueryGapMs` until its expiry: a payment whose notification never comes is seen within one gap
 *   (plus a sweep tick) of being paid;
 * - at its expiry it is closed at the gateway and its points released (a close that finds it paid
 *   settles it instead);
 * - an attempt released unpaid (expired, superseded, failed, closed) is queried once more
 *   `watchAfterExpiryMs` after its expiry, in case its pay sheet was paid after all.
 * For the default 30-minute timeout: queries at +2, +9, +16, +23 min, the close at +30 and the last
 * query at +35: 6 gateway calls for an abandoned attempt.
 */
export const CHECK_SCHEDULE = {
  firstQueryMs: 2 * 60_000,
  /**
   * 8 minutes: with a sweep tick of a minute and an attempt's place in its run (up to the run's 40 s) on
   * top, a payment is still captured within 10. For the default 30 minutes the gaps are 7 minutes anyway;
   * with 9 a timeout such as 29 or 38 minutes had gaps of exactly 9 and no room left.
   */
  maxQueryGapMs: 8 * 60_000,
  watchAfterExpiryMs: 5 * 60_000,
} as const;

/** What the sweeping does with an attempt that is due. */
export type CheckStep = 'query' | 'close' | 'watch';

/** The schedule's view of an attempt. */
export interface ScheduledAttempt {
  status: AttemptStatus;
  createdAt: string;
  expiresAt: string;
}

/** The times an open attempt is queried before its expiry (ms since the epoch), in order. */
export function queryTimes(attempt: Pick<ScheduledAttempt, 'createdAt' | 'expiresAt'>): number[] {
  const first = Date.parse(attempt.createdAt) + CHECK_SCHEDULE.firstQueryMs;
  const expiry = Date.parse(attempt.expiresAt);
  if (first >= expiry) return [];
  const gaps = Math.ceil((expiry - first) / CHECK_SCHEDULE.maxQueryGapMs);
  const gap = (expiry - first) / gaps;
  return Array.from({ length: gaps }, (_, i) => Math.round(first + i * gap));
}

/**
 * When the attempt is next due after `nowMs`, or undefined when the sweeping is done with it (paid,
 * refunded, a refund case). An overdue open attempt past its last query is due at its expiry, which may
 * be in the past: it is closed at the next sweep.
 */
export function nextCheckAt(attempt: ScheduledAttempt, nowMs: number): number | undefined {
  const expiry = Date.parse(attempt.expiresAt);
  if (attempt.status === 'open') return queryTimes(attempt).find((at) => at > nowMs) ?? expiry;
  if (RELEASED_ATTEMPT_STATUSES.includes(attempt.status)) return expiry + CHECK_SCHEDULE.watchAfterExpiryMs;
  return undefined;
}

/** The step a due attempt is at. */
export function stepOf(attempt: ScheduledAttempt, dueAtMs: number): CheckStep | undefined {
  if (attempt.status === 'open') return dueAtMs < Date.parse(attempt.expiresAt) ? 'query' : 'close';
  return RELEASED_ATTEMPT_STATUSES.includes(attempt.status) ? 'watch' : undefined;
}

/**
 * After a check failed (the gateway unreachable, a refusal such as a rate limit, a lost race): the
 * `failures`-th in a row is tried again after 30 s, 1, 2, then every 4 minutes, each with up to a
 * quarter less so that attempts that failed together do not come back together.
 */
export function retryAfterFailure(failures: number, nowMs: number, random: () => number = Math.random): number {
  const delay = Math.min(30_000 * 2 ** Math.max(0, failures - 1), 240_000);
  return nowMs + Math.round(delay * (1 - random() / 4));
}

/** Shards of the due index: at 1,000 pays a second each takes well under 100 writes a second (docs/capacity.md). */
export const DUE_SHARDS = 128;

/**
 * The shard of an attempt, from its out_trade_no (FNV-1a): spread evenly, and the same for ever.
 * Raising DUE_SHARDS later is safe as long as the sweeping reads every shard up to the highest count
 * ever used; lowering it would strand attempts.
 */
export function dueShard(outTradeNo: string, shards: number = DUE_SHARDS): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < outTradeNo.length; i++) {
    hash ^= outTradeNo.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}
