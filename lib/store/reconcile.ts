import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CHECK_SCHEDULE, dueShard } from '../domain/checkSchedule';
import { RELEASED_ATTEMPT_STATUSES, type Refund } from '../domain/model';
import { fenToYuan } from '../domain/money';
import { ABNORMAL } from '../domain/refund';
import { type Clock, systemClock } from '../domain/time';
import { type Item, toRefund } from './items';
import { duePartition, ENTITY, type Entity, INDEX_PARTITION, type LedgerKind } from './keys';
import { scanAll } from './scanAll';

const RELEASED: readonly string[] = RELEASED_ATTEMPT_STATUSES;
/** The sweeper settles an open attempt within minutes of its expiry (a released one of its last look); one still there long after needs a person. */
const STUCK_AFTER_EXPIRY_MS = 15 * 60_000;
/** A refund pending this long is listed for a person (the sweeper keeps following it up). */
const REFUND_OVERDUE_MS = 24 * 60 * 60_000;
/** Attempt states in which the gateway holds the attempt's money for us: it was paid, and not refunded. */
const HOLDS_CASH: readonly string[] = ['paid', 'refund_required'];

export interface RefundCase {
  outTradeNo: string;
  orderId: number;
  userId: number;
  method: number;
  cashFen: number;
  transactionId?: string;
  paidAt?: string;
  /** Its latest refund, if one was made: pending, or failed (then a person must act). */
  refundNo?: string;
  refundStatus?: string;
}

/** A refund a person must look at: failed at its gateway, abnormal at WeChat, or pending for more than a day. */
export type RefundToCheck = Pick<Refund, 'outRefundNo' | 'outTradeNo' | 'orderId' | 'kind' | 'cashFen' | 'points' | 'status' | 'createdAt'> & {
  /** The gateway's reason (failed) or the last follow-up's error (pending). */
  reason?: string;
};

/**
 * Three kinds of finding, by who must act: `problems` (a broken invariant), `needsPerson` (money a
 * person must deal with) and `info` (nothing to do). `npm run reconcile` exits 1 on the first two.
 */
export interface ReconcileReport {
  /** Invariant violations: each one is a bug or a manual edit to look at. */
  problems: string[];
  /**
   * Work for a person, one line each: a refund case no refund was begun for (automatic refunds off),
   * a failed refund, a refund WeChat reports abnormal, a refund pending for more than a day (the lists below hold their details), a
   * second payment of a paid attempt kept for a person (`CONFLICT#`).
   */
  needsPerson: string[];
  /**
   * Facts that are not wrong and need nobody: orders imported as paid outside paynow, refunds on their
   * way, users without a points account, cases a person handled, refunds repaid outside the gateways.
   */
  info: string[];
  /** Money that arrived for an order that could not take it, not refunded yet (whatever its refund's state). */
  refunds: RefundCase[];
  /** Refunds that finally failed (the latest of their attempt): a person decides. */
  failedRefunds: RefundToCheck[];
  /** Refunds WeChat took but cannot pay into the payer's account (pending, `last_error` ABNORMAL): a person sends them on. */
  abnormalRefunds: RefundToCheck[];
  /** Refunds still pending after a day (the abnormal ones aside). */
  overdueRefunds: RefundToCheck[];
  counts: { users: number; orders: number; attempts: number; refunds: number; ledgerEntries: number };
}

/**
 * Checks the whole table (an operator's tool: it scans). Per user: available + held + spent =
 * credited, every bucket matches the ledger, and held = the points of the user's open attempts.
 * Per order and attempt: a paying order has exactly its open attempt, a paid (or refunding) order its
 * paid attempt, a refunded order its refunded one; no paid attempt is left off its order (a payment
 * nobody recorded); per attempt, cash paid minus cash refunded is what its state says the gateway
 * holds (all of it, or nothing once refunded), with at most one refund that succeeded; every attempt
 * and refund is in the index its state needs, and no attempt is still open long after its expiry.
 * Every user with an account, an attempt or a ledger entry is checked; a missing account counts as no
 * points at all (as paying does). An order the seed imported as paid outside paynow has no attempt of
 * ours and is information, not a problem. Problems are confirmed by a second scan (below).
 */
export async function reconcile(db: DynamoDBDocumentClient, table: string, now: Clock = systemClock): Promise<ReconcileReport> {
  const first = checkTable(await scanAll(db, table), now().getTime());
  if (!first.problems.length) return first;
  // A scan is no snapshot of the table: on a live one, a write landing between the reads of two items it
  // relates (a release read on the order but not yet on its attempt) looks like a broken invariant once.
  // A second scan confirms: a problem is reported when its subject (the user, order, attempt or refund
  // it names first) had one in both; one seen once is counted as information.
  const second = checkTable(await scanAll(db, table), now().getTime());
  const seenFirst = new Set(first.problems.map(subjectOf));
  const problems = second.problems.filter((problem) => seenFirst.has(subjectOf(problem)));
  const confirmed = new Set(problems.map(subjectOf));
  const seenOnce = new Set([...first.problems, ...second.problems].map(subjectOf).filter((subject) => !confirmed.has(subject)));
  return {
    ...second,
    problems,
    info: seenOnce.size
      ? [...second.info, `seen in one of two scans only, written to while read: ${[...seenOnce].join(', ')} (run again if it recurs)`]
      : second.info,
  };
}

/** What a problem is about: its text up to the first colon (`user 7`, `order 12`, `attempt 12T1`). */
function subjectOf(problem: string): string {
  return problem.slice(0, problem.indexOf(':'));
}

function checkTable(items: Item[], nowMs: number): ReconcileReport {
  const byEntity = (entity: Entity) => items.filter((i) => i.entity === entity);
  const accounts = byEntity(ENTITY.account);
  const ledger = byEntity(ENTITY.ledger);
  const orders = new Map(byEntity(ENTITY.order).map((o) => [o.order_id as number, o]));
  const attempts = byEntity(ENTITY.attempt);
  const attemptsByNo = new Map(attempts.map((a) => [a.out_trade_no as string, a]));
  const refundItems = byEntity(ENTITY.refund);
  const refundsByNo = new Map(refundItems.map((r) => [r.out_refund_no as string, r]));
  const conflicts = byEntity(ENTITY.paymentConflict);
  const problems: string[] = [];

  // A user who was never credited points has no account and pays in cash: they are checked too, from their attempts and ledger.
  const accountsByUser = new Map(accounts.map((a) => [a.user_id as number, a]));
  const users = new Set([...accountsByUser.keys(), ...attempts.map((a) => a.user_id as number), ...ledger.map((e) => e.user_id as number)]);
  const withoutAccount: number[] = [];
  for (const userId of users) {
    const account = accountsByUser.get(userId);
    if (!account) withoutAccount.push(userId);
    const user = account ? String(userId) : `${userId} (no points account)`;
    const [available, held, spent, credited] = ['integral_available', 'integral_held', 'integral_spent', 'integral_credited'].map((k) =>
      Number(account?.[k] ?? 0),
    );
    if (available < 0 || held < 0 || spent < 0) problems.push(`user ${user}: negative points (available ${available}, held ${held}, spent ${spent})`);
    if (available + held + spent !== credited) {
      problems.push(`user ${user}: available ${available} + held ${held} + spent ${spent} != credited ${credited}`);
    }
    const moves = ledger.filter((e) => e.user_id === userId);
    const sum = (kind: LedgerKind) => moves.filter((e) => e.kind === kind).reduce((total, e) => total + Number(e.points), 0);
    const ledgerHeld = sum('hold') - sum('release') - sum('capture');
    const ledgerSpent = sum('spend') + sum('capture') - sum('refund');
    if (held !== ledgerHeld) problems.push(`user ${user}: held ${held} but the ledger says ${ledgerHeld}`);
    if (spent !== ledgerSpent) problems.push(`user ${user}: spent ${spent} but the ledger says ${ledgerSpent}`);
    const openHeld = attempts.filter((a) => a.user_id === userId && a.status === 'open').reduce((total, a) => total + Number(a.points), 0);
    if (held !== openHeld) problems.push(`user ${user}: held ${held} but open attempts hold ${openHeld}`);
  }

  const paidOutside: number[] = [];
  for (const order of orders.values()) {
    const id = order.order_id as number;
    if (order.paid_outside === true) {
      // Paid before or outside paynow (the seed's status "paid"): no attempt of ours, nothing of ours to check.
      if (order.status === 'paid' && order.paid_attempt === undefined && order.refund === undefined) {
        paidOutside.push(id);
        continue;
      }
      problems.push(`order ${id}: marked paid outside paynow, but ${String(order.status)}${order.paid_attempt ? ` by ${String(order.paid_attempt)}` : ''}`);
    }
    const open = (order.open_attempt as Item | undefined)?.out_trade_no as string | undefined;
    if (order.status === 'paying') {
      const attempt = open ? attemptsByNo.get(open) : undefined;
      if (attempt?.status !== 'open') problems.push(`order ${id}: paying with ${open ?? 'no attempt'}, which is ${attempt?.status ?? 'missing'}`);
    } else if (open && attemptsByNo.get(open)?.status === 'open') {
      problems.push(`order ${id}: ${order.status} but its attempt ${open} is still open`);
    }
    const paidBy = attemptsByNo.get(order.paid_attempt as string)?.status;
    if ((order.status === 'paid' || order.status === 'refunding') && paidBy !== 'paid') {
      problems.push(
        order.paid_attempt === undefined
          ? `order ${id}: ${order.status} without a paid attempt${order.paid_outside === true ? '' : ', and not marked as paid outside paynow'}`
          : `order ${id}: ${order.status} by ${String(order.paid_attempt)}, which is not a paid attempt`,
      );
    }
    if (order.status === 'refunded' && paidBy !== 'refunded')
      problems.push(`order ${id}: refunded but its attempt ${String(order.paid_attempt)} is ${paidBy ?? 'missing'}`);
    const summary = order.refund as Item | undefined;
    const refund = summary && refundsByNo.get(summary.out_refund_no as string);
    if (summary && refund?.status !== summary.status) {
      problems.push(
        `order ${id}: its refund ${String(summary.out_refund_no)} is ${String(summary.status)} on the order, ${String(refund?.status ?? 'missing')} itself`,
      );
    }
    const expectedRefund = { refunding: 'pending', refunded: 'succeeded' }[order.status as string];
    if (expectedRefund && summary?.status !== expectedRefund)
      problems.push(`order ${id}: ${order.status} but its refund is ${String(summary?.status ?? 'missing')}`);
  }

  for (const attempt of attempts) {
    const no = attempt.out_trade_no as string;
    const order = orders.get(attempt.order_id as number);
    if (attempt.status === 'open' && (order?.status !== 'paying' || (order.open_attempt as Item | undefined)?.out_trade_no !== no)) {
      problems.push(`attempt ${no}: open but its order is not paying with it`);
    }
    const indexed = attempt.gsi1pk as string | undefined;
    // Its own due shard, or (not yet moved) the partition of before the due index.
    const due = duePartition(dueShard(no));
    const expectedIndex: (string | undefined)[] =
      attempt.status === 'open'
        ? [due, INDEX_PARTITION.legacyOpen]
        : RELEASED.includes(attempt.status as string)
          ? [undefined, due, INDEX_PARTITION.legacyWatch]
          : [undefined];
    if (!expectedIndex.includes(indexed)) problems.push(`attempt ${no}: ${String(attempt.status)} but indexed as ${indexed ?? 'nothing'}`);
    if (attempt.status === 'open' && nowMs - Date.parse(attempt.expires_at as string) > STUCK_AFTER_EXPIRY_MS) {
      problems.push(`attempt ${no}: still open ${Math.round((nowMs - Date.parse(attempt.expires_at as string)) / 60_000)} minutes after its expiry`);
    }
    // Released unpaid, it is looked at once more after its expiry and then leaves the index. Still in its
    // due shard long after that look, its checks keep failing: a signed payment of another amount, or a
    // gateway that cannot say (the sweeper backs it off for a person).
    const lastLook = Date.parse(attempt.expires_at as string) + CHECK_SCHEDULE.watchAfterExpiryMs;
    if (RELEASED.includes(attempt.status as string) && indexed === due && nowMs - lastLook > STUCK_AFTER_EXPIRY_MS) {
      problems.push(
        `attempt ${no}: ${String(attempt.status)} and still checked ${Math.round((nowMs - lastLook) / 60_000)} minutes after its last look (${Number(attempt.check_failures ?? 0)} failed checks in a row)`,
      );
    }
    if (attempt.status === 'paid' && order?.paid_attempt !== no) problems.push(`attempt ${no}: paid but its order is not paid by it`);
    if ((attempt.status === 'paid' || attempt.status === 'refund_required') && Number(attempt.cash_fen) > 0 && !attempt.transaction_id) {
      problems.push(`attempt ${no}: ${String(attempt.status)} without the gateway's transaction id`);
    }

    // Its money: what the gateway took minus what went back must be what the state says it holds.
    const ownRefunds = refundItems.filter((r) => r.out_trade_no === no);
    const succeeded = ownRefunds.filter((r) => r.status === 'succeeded');
    const cash = Number(attempt.cash_fen);
    const paid = HOLDS_CASH.includes(attempt.status as string) || attempt.status === 'refunded' ? cash : 0;
    const refunded = succeeded.reduce((total, r) => total + Number(r.cash_fen), 0);
    const held = HOLDS_CASH.includes(attempt.status as string) ? cash : 0;
    if (paid - refunded !== held)
      problems.push(`attempt ${no}: ${String(attempt.status)}, paid ${paid} fen, refunded ${refunded} fen, expected to hold ${held} fen`);
    if (succeeded.length > 1) problems.push(`attempt ${no}: refunded ${succeeded.length} times`);
    if (ownRefunds.filter((r) => r.status === 'pending').length > 1) problems.push(`attempt ${no}: more than one refund pending`);
    if (attempt.refund_no !== undefined && refundsByNo.get(attempt.refund_no as string)?.out_trade_no !== no) {
      problems.push(`attempt ${no}: its refund ${String(attempt.refund_no)} is missing`);
    }
    if (attempt.status === 'refunded' && refundsByNo.get(attempt.refund_no as string)?.status !== 'succeeded') {
      problems.push(`attempt ${no}: refunded but its refund ${String(attempt.refund_no)} did not succeed`);
    }
  }

  for (const refund of refundItems) {
    const no = refund.out_refund_no as string;
    const pending = refund.status === 'pending';
    if (pending !== (refund.gsi1pk === INDEX_PARTITION.refund)) {
      problems.push(`refund ${no}: ${String(refund.status)} but indexed as ${String(refund.gsi1pk ?? 'nothing')}`);
    }
    if (pending && !refund.next_check_at) problems.push(`refund ${no}: pending without a next check`);
    if (!attemptsByNo.has(refund.out_trade_no as string)) problems.push(`refund ${no}: its attempt ${String(refund.out_trade_no)} is missing`);
  }

  const refunds = attempts
    .filter((a) => a.status === 'refund_required')
    .map((a) => ({
      outTradeNo: a.out_trade_no as string,
      orderId: a.order_id as number,
      userId: a.user_id as number,
      method: a.method as number,
      cashFen: a.cash_fen as number,
      transactionId: a.transaction_id as string | undefined,
      paidAt: a.paid_at as string | undefined,
      refundNo: a.refund_no as string | undefined,
      refundStatus: refundsByNo.get(a.refund_no as string)?.status as string | undefined,
    }));
  // A failed refund matters while it is its attempt's latest: a new refund after it supersedes it.
  const latest = (r: Item) => attemptsByNo.get(r.out_trade_no as string)?.refund_no === r.out_refund_no;
  // A case a person marked handled (`npm run handled`) is no longer work: counted under information.
  const handled = (i: Item) => i.handled_at !== undefined;
  const failedRefunds = refundItems.filter((r) => r.status === 'failed' && latest(r) && !handled(r)).map((r) => toCheck(toRefund(r), 'failureReason'));
  const openConflicts = conflicts.filter((c) => !handled(c));
  // Only a failed refund can be noted handled (markHandled's condition).
  const handledCases = refundItems.filter(handled).length + conflicts.filter(handled).length;
  const pendingRefunds = refundItems.filter((r) => r.status === 'pending');
  const isAbnormal = (r: Item) => r.last_error === ABNORMAL;
  const abnormalRefunds = pendingRefunds.filter(isAbnormal).map((r) => toCheck(toRefund(r), 'lastError'));
  const overdueRefunds = pendingRefunds
    .filter((r) => !isAbnormal(r) && nowMs - Date.parse(r.created_at as string) > REFUND_OVERDUE_MS)
    .map((r) => toCheck(toRefund(r), 'lastError'));

  const needsPerson = [
    // A case with a refund is followed by the lists below: pending is on its way, failed is listed as failed.
    ...refunds
      .filter((r) => r.refundNo === undefined)
      .map(
        (r) =>
          `refund case ${r.outTradeNo} (order ${r.orderId}, ${fenToYuan(r.cashFen)} yuan): no refund begun; npm run refund -- ${r.orderId} --attempt ${r.outTradeNo} --reason …`,
      ),
    ...failedRefunds.map((r) => `refund ${r.outRefundNo} (order ${r.orderId}): failed${r.reason ? ` (${r.reason})` : ''}; README "When a refund failed"`),
    ...abnormalRefunds.map(
      (r) => `refund ${r.outRefundNo} (order ${r.orderId}): abnormal at WeChat, the payer's account cannot take it; README "When a refund is abnormal"`,
    ),
    ...overdueRefunds.map((r) => `refund ${r.outRefundNo} (order ${r.orderId}): pending since ${r.createdAt}${r.reason ? ` (${r.reason})` : ''}`),
    ...openConflicts.map(
      (c) =>
        `attempt ${String(c.out_trade_no)} (order ${String(c.order_id)}): paid again under ${String(c.channel)} transaction ${String(c.transaction_id)}, ${fenToYuan(Number(c.amount_fen))} yuan, besides ${String(c.recorded_transaction_id)}; see PaymentConflict in README "Logs, metrics and alarms"`,
    ),
  ];
  const info: string[] = [];
  const underway = pendingRefunds.length - abnormalRefunds.length - overdueRefunds.length;
  if (paidOutside.length) info.push(`imported as paid outside paynow: ${plural(paidOutside.length, 'order')}`);
  if (underway) info.push(`refunds on their way: ${underway} (pending less than a day; the sweeper follows them up)`);
  if (handledCases) info.push(`handled by a person: ${handledCases} (failed refunds or second payments noted with npm run handled)`);
  const repaidOutside = refundItems.filter((r) => r.repaid_outside !== undefined);
  if (repaidOutside.length) {
    const yuan = fenToYuan(repaidOutside.reduce((total, r) => total + Number(r.cash_fen), 0));
    info.push(`repaid outside the gateways: ${plural(repaidOutside.length, 'refund')}, ${yuan} yuan (recorded by a person; no gateway statement shows them)`);
  }
  if (withoutAccount.length)
    info.push(`users without a points account: ${plural(withoutAccount.length, 'user')} (no points to hold or spend; they pay in cash)`);
  return {
    problems,
    needsPerson,
    info,
    refunds,
    failedRefunds,
    abnormalRefunds,
    overdueRefunds,
    counts: { users: users.size, orders: orders.size, attempts: attempts.length, refunds: refundItems.length, ledgerEntries: ledger.length },
  };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function toCheck(r: Refund, reason: 'failureReason' | 'lastError'): RefundToCheck {
  const { outRefundNo, outTradeNo, orderId, kind, cashFen, points, status, createdAt } = r;
  return { outRefundNo, outTradeNo, orderId, kind, cashFen, points, status, createdAt, reason: r[reason] };
}
