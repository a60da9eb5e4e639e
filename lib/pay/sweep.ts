import { type Attempt, channelOf, type Refund } from '../domain/model';
import { systemClock } from '../domain/time';
import { TradeAlreadyPaid } from '../gateways/paymentGateway';
import { log } from '../log';
import type { CompletePaymentDeps } from './completePayment';
import { followUpRefund } from './followUpRefund';
import { settleFromGateway } from './settleFromGateway';

export interface SweepOptions {
  /** Attempts this long without a notification are checked at the gateway. */
  quietMs: number;
  /** Released attempts are asked about once more this long after their expiry. */
  watchAfterExpiryMs: number;
  payTimeoutMinutes: number;
  /** At most this many attempts of each kind a run; the rest wait for the next minute. */
  limit: number;
  /** Attempts checked at once. */
  concurrency: number;
  /** Stop starting new work after this long, well inside the function's timeout. */
  budgetMs: number;
}

export interface SweepReport {
  checked: number;
  paid: number;
  released: number;
  unwatched: number;
  /** Refunds that became final in this run (succeeded or failed at their gateway). */
  refunds_settled: number;
  /** Refunds still pending after their follow-up (processing, or the gateway could not say). */
  refunds_pending: number;
  /** Attempts or refunds whose sweep threw; each is tried again next run. */
  failed: number;
}

export const DEFAULT_SWEEP: Omit<SweepOptions, 'payTimeoutMinutes'> = {
  quietMs: 2 * 60_000,
  watchAfterExpiryMs: 5 * 60_000,
  limit: 200,
  concurrency: 4,
  budgetMs: 40_000,
};

type Result = 'paid' | 'released' | 'unwatched' | 'refunds_settled' | 'refunds_pending' | 'waiting';

/** One thing to sweep: what identifies it in a log line, and the work. */
interface Work {
  fields: Record<string, string>;
  run(): Promise<Result>;
}

/**
 * The scheduled repair of attempts:
 * - each open attempt quiet for a while is checked at its gateway; paid ones are completed as a
 *   notification would; expired unpaid ones are closed at the gateway, then released (points back,
 *   order unpaid) in one transaction;
 * - each attempt released unpaid (superseded, failed, expired) is asked about once more after its
 *   expiry, so money paid on an old pay sheet whose notification never came is not lost;
 * - each pending refund due for a follow-up is sent (again, with its number) or queried at its gateway.
 * Every write is conditional on the state it was decided from, so two sweeps at once, or a
 * notification in the middle, settle to one outcome.
 */
export async function sweepOpenAttempts(deps: CompletePaymentDeps, options: SweepOptions): Promise<SweepReport> {
  const now = (deps.now ?? systemClock)();
  // Elapsed time of this run (the function's own deadline), not the clock the decisions use.
  const started = performance.now();
  // Open attempts are indexed by expiry: those created `quietMs` ago or earlier expire by now + timeout - quietMs.
  const quietExpiresBy = new Date(now.getTime() + options.payTimeoutMinutes * 60_000 - options.quietMs).toISOString();
  const expiredBy = new Date(now.getTime() - options.watchAfterExpiryMs).toISOString();
  const [open, watched, refunds] = await Promise.all([
    deps.store.findOpenAttempts(quietExpiresBy, options.limit),
    deps.store.findWatchedAttempts(expiredBy, options.limit),
    deps.store.findDueRefunds(now.toISOString(), options.limit),
  ]);
  const work: Work[] = [
    ...open.map((attempt) => ({ fields: { out_trade_no: attempt.outTradeNo }, run: () => sweepOpen(deps, attempt, now) })),
    ...watched.map((attempt) => ({ fields: { out_trade_no: attempt.outTradeNo }, run: () => recheckReleased(deps, attempt) })),
    ...refunds.map((refund) => ({ fields: { out_refund_no: refund.outRefundNo }, run: () => followUp(deps, refund) })),
  ];

  const report: SweepReport = { checked: 0, paid: 0, released: 0, unwatched: 0, refunds_settled: 0, refunds_pending: 0, failed: 0 };
  const worker = async () => {
    for (let next = work.shift(); next && performance.now() - started < options.budgetMs; next = work.shift()) {
      report.checked++;
      try {
        const result = await next.run();
        if (result !== 'waiting') report[result]++;
      } catch (error) {
        report.failed++;
        log.warn('sweep failed', next.fields, error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return report;
}

async function sweepOpen(deps: CompletePaymentDeps, attempt: Attempt, now: Date): Promise<Result> {
  const { trade, outcome } = await settleFromGateway(deps, attempt);
  // A payment that does not match its attempt (logged by completePayment) is left for a person;
  // reconcile flags the attempt once it is long past its expiry.
  if (outcome === 'mismatch' || outcome === 'unknown_attempt') return 'waiting';
  if (outcome) return 'paid';
  if (Date.parse(attempt.expiresAt) > now.getTime()) return 'waiting';

  const channel = channelOf(attempt.method);
  if (channel && (trade.state === 'unpaid' || trade.state === 'not_found')) {
    try {
      await deps.gateways[channel].closeTrade(attempt.outTradeNo);
    } catch (error) {
      // Paid between our query and the close: complete it instead.
      if (!(error instanceof TradeAlreadyPaid)) throw error;
      return (await settleFromGateway(deps, attempt)).outcome ? 'paid' : 'waiting';
    }
  }
  const { order } = await deps.store.loadSettlementContext(attempt);
  const orderLinked = order?.status === 'paying' && order.openAttempt?.outTradeNo === attempt.outTradeNo;
  // False when a notification completed it in the meantime: then there is nothing left to release.
  if (!(await deps.store.releaseAttempt(attempt, 'expired', now.toISOString(), orderLinked))) return 'waiting';
  log.info('expired attempt released', { out_trade_no: attempt.outTradeNo, order_id: attempt.orderId });
  return 'released';
}

async function recheckReleased(deps: CompletePaymentDeps, attempt: Attempt): Promise<Result> {
  const { outcome } = await settleFromGateway(deps, attempt);
  if (outcome === 'mismatch' || outcome === 'unknown_attempt') return 'waiting';
  if (outcome) return 'paid';
  await deps.store.unwatchAttempt(attempt);
  return 'unwatched';
}

async function followUp(deps: CompletePaymentDeps, refund: Refund): Promise<Result> {
  const outcome = await followUpRefund(deps, refund);
  if (outcome === 'recorded') return 'refunds_settled';
  return outcome === 'pending' ? 'refunds_pending' : 'waiting';
}
