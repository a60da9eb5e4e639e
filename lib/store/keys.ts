import { createHash } from 'node:crypto';

/**
 * The single table's vocabulary: how each item is keyed, what kind of item it is, and the sparse index
 * the sweeper works from. The store, reconcile, seeding and the tests import these names instead of
 * typing `USER#` or `'OPEN'` again.
 */
export const keys = {
  session: (tokenHash: string) => ({ pk: `SESSION#${tokenHash}`, sk: 'SESSION' }),
  account: (userId: number) => ({ pk: userPartition(userId), sk: 'ACCOUNT' }),
  address: (userId: number, addressId: number) => ({ pk: userPartition(userId), sk: `ADDRESS#${addressId}` }),
  ledger: (userId: number, outTradeNo: string, kind: LedgerKind) => ({ pk: userPartition(userId), sk: `${LEDGER_PREFIX}${outTradeNo}#${kind}` }),
  /** A points movement the shop made, keyed by the shop's own entry id (one per id, whatever its kind). */
  shopLedger: (userId: number, entryId: string) => ({ pk: userPartition(userId), sk: `${LEDGER_PREFIX}SHOP#${entryId}` }),
  order: (orderId: number) => ({ pk: `ORDER#${orderId}`, sk: 'ORDER' }),
  attempt: (outTradeNo: string) => ({ pk: `ATTEMPT#${outTradeNo}`, sk: 'ATTEMPT' }),
  /** When the app's calls last made the gateway check this attempt (`claimGatewayCheck`). */
  gatewayCheck: (outTradeNo: string) => ({ pk: `ATTEMPT#${outTradeNo}`, sk: 'CHECK' }),
  refund: (outRefundNo: string) => ({ pk: `REFUND#${outRefundNo}`, sk: 'REFUND' }),
  event: (eventId: string) => ({ pk: `EVENT#${eventId}`, sk: 'EVENT' }),
  paymentConflict: (outTradeNo: string, transactionId: string) => ({ pk: `CONFLICT#${outTradeNo}`, sk: `TRANSACTION#${transactionId}` }),
};

export type ItemKey = { pk: string; sk: string };

/** Everything of one user (account, addresses, ledger) shares this partition. */
export function userPartition(userId: number): string {
  return `USER#${userId}`;
}

/** Sort-key prefix of a user's ledger entries: query `begins_with(sk, LEDGER_PREFIX)`. */
export const LEDGER_PREFIX = 'LEDGER#';

/** The `entity` attribute every item carries. */
export const ENTITY = {
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
} as const;
export type Entity = (typeof ENTITY)[keyof typeof ENTITY];

/**
 * hold: available -> held; release: held -> available; spend: available -> spent; capture: held -> spent;
 * refund: spent -> available (a paid order refunded); credit and debit: the shop adds points to
 * available or takes them from it (and from credited).
 */
export type LedgerKind = 'hold' | 'release' | 'spend' | 'capture' | 'refund' | 'credit' | 'debit';

/**
 * The sparse index `open-attempts` is the sweeper's work list, so it never scans: partitions DUE#000 to
 * DUE#127 hold every attempt the sweeping still has to look at (open ones, and those released unpaid
 * until their last check), spread by out_trade_no (`dueShard`) and sorted by when each is next due
 * (`lib/domain/checkSchedule.ts`); REFUND holds pending refunds, sorted by when they are next followed
 * up; OUTBOX#00 to OUTBOX#15 hold undelivered events, spread by order id and sorted by creation
 * (`outboxPartition`). OPEN and WATCH held open and watched attempts, sorted by expiry, before the due
 * partitions (issue 12); the sweeper moves what is left in them (docs/capacity.md, "Migration").
 * (The index kept its first name when refunds joined it: renaming a GSI means deleting and rebuilding it
 * on a live table.)
 */
export const OPEN_ATTEMPTS_INDEX = 'open-attempts';
export const INDEX_PARTITION = { refund: 'REFUND', legacyOpen: 'OPEN', legacyWatch: 'WATCH' } as const;

/** The index partition of a due shard. */
export function duePartition(shard: number): string {
  return `DUE#${String(shard).padStart(3, '0')}`;
}

/** `<due_at>#<out_trade_no>`: sorts by when the attempt is next due, unique per attempt. */
export function dueSortKey(dueAt: string, outTradeNo: string): string {
  return `${dueAt}#${outTradeNo}`;
}

/** One sweep worker at a time per group of shards (`claimSweepLease`). */
export function sweepLeaseKey(group: number): ItemKey {
  return { pk: `SWEEP#${group}`, sk: 'LEASE' };
}

/** The index partition of an order's undelivered events (`eventShard`). */
export function outboxPartition(shard: number): string {
  return `OUTBOX#${String(shard).padStart(2, '0')}`;
}

/** `<created_at>#<event id>`: an order's events in the order they happened. */
export function outboxSortKey(event: { created_at: string; id: string }): string {
  return `${event.created_at}#${event.id}`;
}

/** `<next_check_at>#<out_refund_no>`: sorts by the next follow-up, unique per refund. */
export function refundIndexSortKey(refund: { nextCheckAt: string; outRefundNo: string }): string {
  return `${refund.nextCheckAt}#${refund.outRefundNo}`;
}

/** Tokens are stored as their SHA-256, so a leaked table leaks no usable token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
