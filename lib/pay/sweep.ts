import { randomUUID } from 'node:crypto';
import { DUE_SHARDS, nextCheckAt, retryAfterFailure, stepOf } from '../domain/checkSchedule';
import { type Attempt, CHANNELS, type Channel, channelOf, type Refund } from '../domain/model';
import { systemClock } from '../domain/time';
import { GatewayError, TradeAlreadyPaid } from '../gateways/paymentGateway';
import { log } from '../log';
import type { CompletePaymentDeps, CompletionOutcome } from './completePayment';
import { followUpRefund } from './followUpRefund';
import { CallRateLimiter, type GatewayCallCount, rateLimited } from './gatewayRateLimit';
import { runInLanes } from './lanes';
import { settleFromGateway } from './settleFromGateway';

export interface SweepOptions {
  /** Workers the due shards are split between; each runs alone (a lease) on its share of the shards. */
  groups: number;
  /** Gateway calls a second per channel that all the workers together never exceed. */
  gatewayCallsPerSecond: number;
  /** Attempts read per query of a shard. */
  pageSize: number;
  /**
   * Attempts checked at once by one worker, per gateway channel: a channel that is slow, or held at its
   * call cap, holds up only its own attempts.
   */
  concurrency: number;
  /** Attempts of one channel a worker holds read ahead; more are read again once it has room. */
  queueLimit: number;
  /** Stop starting new work after this long, well inside the function's timeout. */
  budgetMs: number;
  /** How long a worker's lease holds if it is never given back (the function's timeout). */
  leaseMs: number;
  random?: () => number;
}

export const DEFAULT_SWEEP: SweepOptions = {
  groups: 4,
  gatewayCallsPerSecond: 100,
  pageSize: 100,
  concurrency: 8,
  queueLimit: 1_000,
  budgetMs: 40_000,
  leaseMs: 55_000,
};

export interface SweepReport {
  checked: number;
  paid: number;
  released: number;
  unwatched: number;
  /** Queried, unpaid, and due again at their next check. */
  rescheduled: number;
  /** Refunds that became final in this run (succeeded or failed at their gateway). */
  refunds_settled: number;
  /** Refunds still pending after their follow-up (processing, or the gateway could not say). */
  refunds_pending: number;
  /** Attempts moved out of the partitions of before the due index (to their due shard, or out of the index when done with). */
  migrated: number;
  /** Checks or refunds that threw; each is due again after a backoff. */
  failed: number;
  /** Groups skipped because another worker held their lease. */
  busy: number;
  /**
   * Groups whose run ended with due work it had no time for: the sweeping is not keeping up (a backlog,
   * or a slow gateway holding up the attempts behind its own), and deadlines slip. Alarmed (SweepBehind).
   */
  behind: number;
  gateway_calls_wechat: number;
  gateway_calls_alipay: number;
}

type Result = 'paid' | 'released' | 'unwatched' | 'rescheduled' | 'refunds_settled' | 'refunds_pending' | 'waiting';

/** The shards of one group: every `groups`-th shard from `group` on. */
export function shardsOf(group: number, groups: number): number[] {
  return Array.from({ length: DUE_SHARDS }, (_, shard) => shard).filter((shard) => shard % groups === group);
}

/** One worker's part of the per-channel cap: the whole cap over the workers, rounded down, at least one. */
export function sweepShare(options: Pick<SweepOptions, 'groups' | 'gatewayCallsPerSecond'>): number {
  return Math.max(1, Math.floor(options.gatewayCallsPerSecond / options.groups));
}

/**
 * The scheduled sweeping (`lib/domain/checkSchedule.ts`): every minute one worker per group of due
 * shards takes the attempts that are due and does their step:
 * - query: a paid attempt is completed as its notification would; one its gateway has closed is released
 *   (a switch closed it, then could not write: it can no longer be paid); an unpaid one is due again at
 *   its next query, or at its expiry;
 * - close: the expired attempt is closed at its gateway (a close that finds it paid completes it
 *   instead), then released (points back, order unpaid) in one transaction, and due once more later;
 * - watch: an attempt released unpaid is asked about once more after its expiry, then leaves the index.
 * A step that fails (gateway, lost race) makes the attempt due again after a backoff; a worker that dies
 * leaves it due as it was. Every write is conditional on the state it was decided from, so two sweeps at
 * once, or a notification in the middle, settle to one outcome. Group 0 also follows up pending refunds
 * and moves attempts left in the partitions of before the due index.
 *
 * @param group the worker's group, or undefined for all groups in turn (`npm run sweep`)
 */
export async function sweep(deps: CompletePaymentDeps, options: SweepOptions, group?: number): Promise<SweepReport> {
  const report: SweepReport = {
    checked: 0,
    paid: 0,
    released: 0,
    unwatched: 0,
    rescheduled: 0,
    refunds_settled: 0,
    refunds_pending: 0,
    migrated: 0,
    failed: 0,
    busy: 0,
    behind: 0,
    gateway_calls_wechat: 0,
    gateway_calls_alipay: 0,
  };
  // Elapsed time of this run (the function's own deadline), not the clock the decisions use.
  const started = performance.now();
  const share = sweepShare(options);
  const groups = group === undefined ? Array.from({ length: options.groups }, (_, g) => g) : [group];
  for (const g of groups) {
    if (performance.now() - started >= options.budgetMs) break;
    await sweepGroup(deps, options, g, { share, started, report });
  }
  return report;
}

async function sweepGroup(
  deps: CompletePaymentDeps,
  options: SweepOptions,
  group: number,
  run: { share: number; started: number; report: SweepReport },
): Promise<void> {
  const now = (deps.now ?? systemClock)();
  const nowIso = now.toISOString();
  const owner = randomUUID();
  if (!(await deps.store.claimSweepLease(group, owner, nowIso, new Date(now.getTime() + options.leaseMs).toISOString()))) {
    run.report.busy++;
    return;
  }
  const calls: GatewayCallCount = { wechat: 0, alipay: 0 };
  const limited = { ...deps, gateways: rateLimited(deps.gateways, { wechat: new CallRateLimiter(run.share), alipay: new CallRateLimiter(run.share) }, calls) };
  try {
    const { left, behind } = await runInLanes(
      () => dueWork(limited, options, group, now),
      {
        laneOf: (work) => work.channel ?? 'none',
        // An attempt's or a refund's number: read again while it waits or runs, it is not taken twice.
        keyOf: (work) => Object.entries(work.fields).join(),
        lanes: CHANNELS,
        concurrency: options.concurrency,
        queueLimit: options.queueLimit,
        timeLeft: () => performance.now() - run.started < options.budgetMs,
      },
      async (work) => {
        run.report.checked++;
        try {
          const result = await work.run();
          if (result !== 'waiting') run.report[result]++;
        } catch (error) {
          run.report.failed++;
          log.warn('sweep failed', work.fields, error);
        }
      },
    );
    if (left) {
      run.report.behind++;
      // The channels whose attempts waited: a slow or capped gateway holds up its own channel only.
      log.warn('sweep ran out of time with attempts still due', { group, ...(behind.length > 0 ? { channels_behind: behind.join(',') } : {}) });
    }
    if (group === 0) run.report.migrated += await moveLegacyIndexed(deps, options, now);
  } finally {
    run.report.gateway_calls_wechat += calls.wechat;
    run.report.gateway_calls_alipay += calls.alipay;
    await deps.store.releaseSweepLease(group, owner);
  }
}

/** One thing to sweep: what identifies it (in a log line too), the gateway it calls (none: points only), and the work. */
interface Work {
  fields: Record<string, string>;
  channel?: Channel;
  run(): Promise<Result>;
}

/**
 * Group 0's due refunds, then the group's due attempts, shard by shard and page by page as the lanes
 * want more (read again from the start for attempts skipped at a full lane). Refunds come first: at most
 * a page of them, and under a backlog of attempts bigger than a run they would never be reached. They and the first page of every shard are read up front, `concurrency` shards
 * at a time: a quiet minute costs a worker of prod's 64 groups one round trip, not one per shard, and no
 * more reads are in flight than its steps would have (each one in flight is a connection of its own on
 * a cold start: a TLS handshake on AWS).
 */
async function* dueWork(deps: CompletePaymentDeps, options: SweepOptions, group: number, now: Date): AsyncGenerator<Work> {
  const nowIso = now.toISOString();
  const shards = shardsOf(group, options.groups);
  const readFirstPages = async () => {
    const pages: { attempts: Attempt[]; after?: string }[] = [];
    for (let i = 0; i < shards.length; i += options.concurrency) {
      const batch = shards.slice(i, i + options.concurrency);
      pages.push(...(await Promise.all(batch.map((shard) => deps.store.findDueAttempts(shard, nowIso, options.pageSize)))));
    }
    return pages;
  };
  // Awaited together: a failed refunds read is this run's error, never an unhandled rejection that ends the process.
  const [refunds, firstPages] = await Promise.all([group === 0 ? deps.store.findDueRefunds(nowIso, options.pageSize) : [], readFirstPages()]);
  for (const refund of refunds) yield { fields: { out_refund_no: refund.outRefundNo }, channel: refund.channel, run: () => followUp(deps, refund) };
  for (const [i, shard] of shards.entries()) {
    for (let page = firstPages[i]; ; ) {
      for (const attempt of page.attempts)
        yield { fields: { out_trade_no: attempt.outTradeNo }, channel: channelOf(attempt.method), run: () => checkDue(deps, attempt, now, options) };
      if (!page.after) break;
      page = await deps.store.findDueAttempts(shard, nowIso, options.pageSize, page.after);
    }
  }
}

/** The attempt's step, decided at `now`: an attempt found past its expiry is closed, whatever step it was due for. */
async function checkDue(deps: CompletePaymentDeps, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result> {
  try {
    switch (stepOf(attempt, now.getTime())) {
      case 'query':
        return await query(deps, attempt, now, options);
      case 'close':
        return await closeExpired(deps, attempt, now, options);
      case 'watch':
        return await watch(deps, attempt, now, options);
      default:
        // Done with it (paid, a refund case, refunded) but still indexed: a write of before the due
        // index. Out it goes.
        return (await deps.store.unwatchAttempt(attempt)) ? 'unwatched' : 'waiting';
    }
  } catch (error) {
    // Due again after a backoff; should even that write fail, it stays due and the next run takes it.
    await failedCheck(deps, attempt, now, options).catch((rescheduling) =>
      log.warn('sweep could not reschedule', { out_trade_no: attempt.outTradeNo }, rescheduling),
    );
    throw error;
  }
}

async function query(deps: CompletePaymentDeps, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result> {
  const { trade, outcome } = await settleFromGateway(deps, attempt);
  if (outcome) return paidOrForAPerson(deps, attempt, outcome, now, options);
  // Closed before its expiry, yet open here: a switch closed it and never wrote (its new prepay failed and
  // so did the release, or it crashed). Superseded, as the switch would have written; points back now.
  if (trade.state === 'closed') return release(deps, attempt, 'superseded', now);
  return reschedule(deps, attempt, now);
}

async function closeExpired(deps: CompletePaymentDeps, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result> {
  const channel = channelOf(attempt.method);
  if (channel === 'alipay') {
    // Alipay closes a trade itself at its time_expire, and an order string never opened has no trade:
    // the query settles most at one call, and only a trade still payable is closed (WeChat's trade
    // exists from its prepay, so there the close comes first).
    const { trade, outcome } = await settleFromGateway(deps, attempt);
    if (outcome) return paidOrForAPerson(deps, attempt, outcome, now, options);
    if (trade.state === 'unpaid') {
      const closed = await closeOrSettle(deps, channel, attempt, now, options);
      if (closed) return closed;
    }
  } else if (channel) {
    const closed = await closeOrSettle(deps, channel, attempt, now, options);
    if (closed) return closed;
  }
  return release(deps, attempt, 'expired', now);
}

/** The attempt's points back, and its order unpaid if it is still paying with it. */
async function release(deps: CompletePaymentDeps, attempt: Attempt, status: 'expired' | 'superseded', now: Date): Promise<Result> {
  // A plain read: the release is conditional on the order paying with it (or not), the attempt still open.
  const order = await deps.store.getOrder(attempt.orderId);
  const orderLinked = order?.status === 'paying' && order.openAttempt?.outTradeNo === attempt.outTradeNo;
  // False when a notification completed it in the meantime: then there is nothing left to release.
  if (!(await deps.store.releaseAttempt(attempt, status, now.toISOString(), orderLinked))) return 'waiting';
  log.info(status === 'expired' ? 'expired attempt released' : 'closed attempt released', { out_trade_no: attempt.outTradeNo, order_id: attempt.orderId });
  return 'released';
}

/**
 * Closes the attempt's trade at its gateway; undefined once it can no longer be paid (closed, or
 * unknown to the gateway), to be released. A close refused (as paid, or in a way we do not know: what
 * WeChat's v3 close answers for a paid trade is not documented; Alipay's TRADE_STATUS_ERROR) asks the
 * query what the trade is.
 */
async function closeOrSettle(deps: CompletePaymentDeps, channel: Channel, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result | undefined> {
  try {
    await deps.gateways[channel].closeTrade(attempt.outTradeNo);
    return undefined;
  } catch (error) {
    if (!(error instanceof TradeAlreadyPaid) && !(error instanceof GatewayError)) throw error;
    const { trade, outcome } = await settleFromGateway(deps, attempt);
    if (outcome) return paidOrForAPerson(deps, attempt, outcome, now, options);
    // Refused as paid, yet not paid by the query: the gateway contradicts itself. A failed check (backed
    // off, counted and logged: SweepAttemptFailures), for a person.
    if (error instanceof TradeAlreadyPaid) throw new GatewayError(`close refused as paid, but the query says ${trade.state}`, { cause: error });
    // The close failed and the trade can still be paid: backed off, the close's error reported. Closed,
    // or unknown to the gateway, there is nothing left to stop: it is released.
    if (trade.state !== 'closed' && trade.state !== 'not_found') throw error;
    return undefined;
  }
}

async function watch(deps: CompletePaymentDeps, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result> {
  const { outcome } = await settleFromGateway(deps, attempt);
  if (outcome) return paidOrForAPerson(deps, attempt, outcome, now, options);
  return (await deps.store.unwatchAttempt(attempt)) ? 'unwatched' : 'waiting';
}

/**
 * A payment the gateway vouches for, recorded: paid; unless it does not match its attempt (logged and
 * alarmed by completePayment): then it is left for a person, asked about again after the backoff, not on
 * its schedule. Reconcile flags it past its expiry.
 */
async function paidOrForAPerson(deps: CompletePaymentDeps, attempt: Attempt, outcome: CompletionOutcome, now: Date, options: SweepOptions): Promise<Result> {
  return outcome === 'mismatch' || outcome === 'unknown_attempt' ? failedCheck(deps, attempt, now, options) : 'paid';
}

async function reschedule(deps: CompletePaymentDeps, attempt: Attempt, now: Date): Promise<Result> {
  const next = nextCheckAt(attempt, now.getTime());
  if (next === undefined) return 'waiting';
  return (await deps.store.rescheduleCheck(attempt, new Date(next).toISOString(), 0)) ? 'rescheduled' : 'waiting';
}

/** Due again after a backoff that grows with the failures in a row. */
async function failedCheck(deps: CompletePaymentDeps, attempt: Attempt, now: Date, options: SweepOptions): Promise<Result> {
  const failures = (attempt.checkFailures ?? 0) + 1;
  await deps.store.rescheduleCheck(attempt, new Date(retryAfterFailure(failures, now.getTime(), options.random)).toISOString(), failures);
  return 'waiting';
}

async function followUp(deps: CompletePaymentDeps, refund: Refund): Promise<Result> {
  const outcome = await followUpRefund(deps, refund);
  if (outcome === 'recorded') return 'refunds_settled';
  return outcome === 'pending' ? 'refunds_pending' : 'waiting';
}

/**
 * Attempts written before the due index (partitions OPEN and WATCH) moved to their due shard, due at
 * their next check from now; the next runs sweep them like any other (docs/capacity.md, "Migration").
 * One done with (paid, a refund case, refunded) leaves the index instead: left there, it would be read
 * again every run and a page of them would stop the move.
 */
async function moveLegacyIndexed(deps: CompletePaymentDeps, options: SweepOptions, now: Date): Promise<number> {
  let moved = 0;
  for (const attempt of await deps.store.findLegacyIndexed(options.pageSize)) {
    const due = nextCheckAt(attempt, now.getTime());
    const left = due === undefined ? await deps.store.unwatchAttempt(attempt) : await deps.store.moveToDueIndex(attempt, new Date(due).toISOString());
    if (left) moved++;
  }
  return moved;
}
