import type { Refund } from '../domain/model';
import { systemClock } from '../domain/time';
import { log } from '../log';
import { metrics } from '../metrics';
import type { CompletePaymentDeps } from './completePayment';
import { retryLostRaces } from './retryLostRaces';

/** A refund's final result, whichever brought it: the refund call's answer, a query or a notification. */
export type RefundResult = { state: 'succeeded'; refundedAt?: string } | { state: 'failed'; reason: string };

/**
 * recorded: this result made the refund final; duplicate: it was final already (the second of a
 * notification and a query, a replayed notification): nothing changed.
 */
export type RefundResultOutcome = 'recorded' | 'duplicate';

/**
 * Records a refund's final result once. Both writes are conditional on the refund still pending, so
 * when a notification and a query race, one records and the other, re-reading, finds it final.
 */
export async function recordRefundResult(deps: CompletePaymentDeps, outRefundNo: string, result: RefundResult): Promise<RefundResultOutcome> {
  return retryLostRaces(async () => {
    const refund = await deps.store.getRefund(outRefundNo);
    if (!refund) throw new Error(`refund ${outRefundNo} is not recorded`);
    if (refund.status !== 'pending') {
      if (refund.status !== result.state) {
        // A gateway contradicting itself about money: only a person can sort that out.
        log.error('refund result contradicts the recorded one', { out_refund_no: outRefundNo, recorded: refund.status, reported: result.state });
        metrics.count('Refund', { kind: refund.kind, outcome: 'contradicted' });
      }
      return 'duplicate';
    }
    const now = (deps.now ?? systemClock)().toISOString();
    if (result.state === 'succeeded') {
      await deps.store.completeRefund(refund, result.refundedAt ?? now, now);
      log.info('refund succeeded', refundLogFields(refund));
      metrics.count('Refund', { kind: refund.kind, outcome: 'succeeded' });
    } else {
      await deps.store.failRefund(refund, result.reason, now);
      log.error('refund failed', { ...refundLogFields(refund), failure_reason: result.reason });
      metrics.count('Refund', { kind: refund.kind, outcome: 'failed' });
    }
    return 'recorded';
  });
}

/** What identifies a refund in a log line. */
export function refundLogFields(refund: Refund) {
  return { out_refund_no: refund.outRefundNo, out_trade_no: refund.outTradeNo, order_id: refund.orderId, kind: refund.kind, cash_fen: refund.cashFen };
}
