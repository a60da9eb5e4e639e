import { channelOf, type Attempt } from '../domain/model';
import { TradeAlreadyPaid } from '../gateways/paymentGateway';
import { log } from '../log';
import type { CompletePaymentDeps } from './completePayment';
import { settleFromGateway } from './settleFromGateway';

export interface SweepOptions {
  /** Attempts this long without a notification are checked at the gateway. */
  quietMs: number;
  payTimeoutMinutes: number;
  /** At most this many attempts a run; the rest wait for the next minute. */
  limit: number;
}

export interface SweepReport {
  checked: number;
  paid: number;
  released: number;
  failed: number;
}

export const DEFAULT_SWEEP: Omit<SweepOptions, 'payTimeoutMinutes'> = { quietMs: 2 * 60_000, limit: 200 };

/**
 * The scheduled repair of open attempts: each one quiet for a while is checked at its gateway;
 * paid ones are completed as a notification would; expired unpaid ones are closed at the gateway,
 * then released (points back, order unpaid) in one transaction. Every write is conditional on the
 * attempt still being open, so two sweeps at once, or a notification in the middle, settle to one outcome.
 */
export async function sweepOpenAttempts(deps: CompletePaymentDeps, options: SweepOptions): Promise<SweepReport> {
  const now = (deps.now ?? (() => new Date()))();
  // Open attempts are indexed by expiry; one created `quietMs` ago expires at now + timeout - quietMs.
  const createdBy = new Date(now.getTime() + options.payTimeoutMinutes * 60_000 - options.quietMs);
  const attempts = await deps.store.findOpenAttempts(createdBy.toISOString(), options.limit);
  const report: SweepReport = { checked: attempts.length, paid: 0, released: 0, failed: 0 };
  for (const attempt of attempts) {
    try {
      const result = await sweepAttempt(deps, attempt, now);
      if (result === 'paid') report.paid++;
      if (result === 'released') report.released++;
    } catch (error) {
      report.failed++;
      log.warn('sweep of attempt failed', { outTradeNo: attempt.outTradeNo, name: (error as Error).name, error: (error as Error).message });
    }
  }
  return report;
}

async function sweepAttempt(deps: CompletePaymentDeps, attempt: Attempt, now: Date): Promise<'paid' | 'released' | 'waiting'> {
  const { trade, outcome } = await settleFromGateway(deps, attempt);
  // A payment that does not match its attempt (logged by completePayment) is left open for a person.
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
  log.info('expired attempt released', { outTradeNo: attempt.outTradeNo, orderId: attempt.orderId });
  return 'released';
}
