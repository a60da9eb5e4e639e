import type { Refund } from '../domain/model';
import { ABNORMAL, nextCheckAt } from '../domain/refund';
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
      if (refund.status !== result.state) await reportContradiction(deps, refund, result.state);
      return 'duplicate';
    }
    const now = (deps.now ?? systemClock)().toISOString();
    if (result.state === 'succeeded') {
      await deps.store.completeRefund(refund, result.refundedAt ?? now, now);
      reportRefundSucceeded(refund);
    } else {
      await deps.store.failRefund(refund, result.reason, now);
      log.error('refund failed', { ...refundLogFields(refund), failure_reason: result.reason });
      metrics.count('Refund', { kind: refund.kind, outcome: 'failed' });
    }
    return 'recorded';
  });
}

/**
 * A gateway contradicting a final result about money: only a person can sort that out. The worst case
 * is named in its own line: a refund recorded failed that the gateway paid after all, once a later
 * refund of the same payment was recorded repaid outside the gateways (the payer has the cash twice).
 */
async function reportContradiction(deps: CompletePaymentDeps, refund: Refund, reported: RefundResult['state']): Promise<void> {
  metrics.count('Refund', { kind: refund.kind, outcome: 'contradicted' });
  const latestNo = (await deps.store.getAttempt(refund.outTradeNo))?.refundNo;
  const latest = latestNo && latestNo !== refund.outRefundNo ? await deps.store.getRefund(latestNo) : undefined;
  if (latest?.repaidOutside !== undefined) {
    log.error('refund paid by its gateway after the payment was repaid outside: the payer has the cash twice', {
      ...refundLogFields(refund),
      repaid_outside_refund: latest.outRefundNo,
    });
    return;
  }
  log.error('refund result contradicts the recorded one', {
    out_refund_no: refund.outRefundNo,
    recorded: refund.status,
    reported,
    handled: refund.handledNote !== undefined,
  });
}

/** What a person and the dashboards see of a refund that succeeded: an info line and the `succeeded` count. */
export function reportRefundSucceeded(refund: Refund): void {
  log.info('refund succeeded', refundLogFields(refund));
  metrics.count('Refund', { kind: refund.kind, outcome: 'succeeded' });
}

/** What identifies a refund in a log line (a repayment outside the gateways says so; its note is a person's words, not logged). */
export function refundLogFields(refund: Refund) {
  const fields = { out_refund_no: refund.outRefundNo, out_trade_no: refund.outTradeNo, order_id: refund.orderId, kind: refund.kind, cash_fen: refund.cashFen };
  return refund.repaidOutside === undefined ? fields : { ...fields, repaid_outside: true };
}

/**
 * A refund WeChat took but cannot pay into the payer's account (ABNORMAL: a closed bank card or
 * account). Not a result: the money waits at WeChat until a person sends it on in the merchant platform
 * (发起异常退款), and then this same refund succeeds. So it stays pending (its order refunding; asking
 * again is answered "in progress", never a second refund), marked `last_error` ABNORMAL, and its
 * follow-ups go on. The write that marks it first tells a person: an error line and the `abnormal` count.
 * False when the refund moved on meanwhile (this copy of it is stale): nothing written.
 */
export async function recordRefundAbnormal(deps: CompletePaymentDeps, refund: Refund): Promise<boolean> {
  const marked = await deferFollowUp(deps, refund, (deps.now ?? systemClock)(), true, ABNORMAL);
  if (marked && refund.lastError !== ABNORMAL) {
    log.error('refund abnormal at the gateway: a person must send it on', refundLogFields(refund));
    metrics.count('Refund', { kind: refund.kind, outcome: 'abnormal' });
  }
  return marked;
}

/** The refund's next follow-up scheduled; false when it moved on meanwhile (this copy of it is stale). */
export async function deferFollowUp(deps: CompletePaymentDeps, refund: Refund, now: Date, accepted: boolean, lastError?: string): Promise<boolean> {
  const deferred = await deps.store.deferRefund(refund, { nextCheckAt: nextCheckAt(refund.checks, now), accepted, lastError }, now.toISOString());
  if (!deferred) log.info('refund moved on during its follow-up', refundLogFields(refund));
  return deferred;
}
