import type { Refund } from '../domain/model';
import { ABNORMAL, failureReason } from '../domain/refund';
import { systemClock } from '../domain/time';
import { GatewayError, type PaymentGateway, type RefundRequest, type RefundState } from '../gateways/paymentGateway';
import { log } from '../log';
import { metrics } from '../metrics';
import type { CompletePaymentDeps } from './completePayment';
import { deferFollowUp, type RefundResultOutcome, recordRefundAbnormal, recordRefundResult, refundLogFields } from './recordRefundResult';

/**
 * What one follow-up left the refund as: final now (or already), still pending, or moved_on: another
 * follow-up or a notification moved it on meanwhile (final perhaps), so this one changed nothing.
 */
export type FollowUpOutcome = RefundResultOutcome | 'pending' | 'moved_on';

/** A refund this old and still pending is overdue: counted on every follow-up, which alarms. */
const OVERDUE_AFTER_MS = 24 * 60 * 60_000;

/**
 * Moves a pending refund on at its gateway: sends it (again: the same number is refunded once) until
 * the gateway has taken it, then queries it; a final answer is recorded, anything else (processing,
 * a gateway error, a timeout) leaves it pending with its next follow-up spaced out. A refusal is
 * believed only once a query agrees that this number was never carried out.
 */
export async function followUpRefund(deps: CompletePaymentDeps, refund: Refund): Promise<FollowUpOutcome> {
  const channel = refund.channel;
  if (!channel) throw new Error(`refund ${refund.outRefundNo} has no gateway`);
  const gateway = deps.gateways[channel];
  const request: RefundRequest = {
    outTradeNo: refund.outTradeNo,
    outRefundNo: refund.outRefundNo,
    refundFen: refund.cashFen,
    totalFen: refund.totalFen,
    reason: refund.reason,
  };
  const now = (deps.now ?? systemClock)();
  if (now.getTime() - Date.parse(refund.createdAt) > OVERDUE_AFTER_MS) {
    log.error('refund still pending after a day', refundLogFields(refund));
    metrics.count('Refund', { kind: refund.kind, outcome: 'overdue' });
  }

  let state: RefundState;
  try {
    state = refund.accepted ? await gateway.queryRefund(request) : { state: 'not_found' };
    if (state.state === 'not_found') {
      state = await sendRefund(gateway, request);
      if (state.state === 'failed') state = await confirmRefusal(() => gateway.queryRefund(request), state);
    }
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    log.warn('refund follow-up failed at the gateway', refundLogFields(refund), error);
    metrics.count('Refund', { kind: refund.kind, outcome: 'retry' });
    // An abnormal refund stays marked so (for reconcile and the person): a failed look changes nothing about it.
    const lastError = refund.lastError === ABNORMAL ? ABNORMAL : error.message;
    return (await deferFollowUp(deps, refund, now, false, lastError)) ? 'pending' : 'moved_on';
  }

  switch (state.state) {
    case 'succeeded':
      return recordRefundResult(deps, refund.outRefundNo, { state: 'succeeded', refundedAt: state.refundedAt });
    case 'failed':
      return recordRefundResult(deps, refund.outRefundNo, { state: 'failed', reason: failureReason(state) });
    case 'abnormal':
      return (await recordRefundAbnormal(deps, refund)) ? 'pending' : 'moved_on';
    case 'processing':
    case 'not_found': // the refund call never answers this
      return (await deferFollowUp(deps, refund, now, state.state === 'processing')) ? 'pending' : 'moved_on';
  }
}

/**
 * The refund sent, and where its answer says nothing final by itself, the one query that does, asked
 * as a call of its own (the sweeping's cap and the metrics count every call; see RefundAnswer):
 * - unconfirmed: the refund's query; a refund not carried out (yet) is processing, asked again later;
 * - refused for the trade's state: the trade's query; paid past its refund window, or closed (refunded
 *   in full already, by hand perhaps), is final; any other state is a GatewayError, sent again later.
 */
export async function sendRefund(gateway: PaymentGateway, request: RefundRequest): Promise<RefundState> {
  const answer = await gateway.refund(request);
  switch (answer.state) {
    case 'unconfirmed': {
      const check = await explaining(`${gateway.channel} refund taken without moving money`, gateway.queryRefund(request));
      return check.state === 'not_found' ? { state: 'processing' } : check;
    }
    case 'refused_for_trade_state': {
      const trade = await explaining(`${gateway.channel} refund refused (${answer.reason})`, gateway.queryTrade(request.outTradeNo));
      if (trade.state === 'paid' && trade.windowClosed)
        return { state: 'failed', reason: `${answer.reason}: paid, past its refund period`, windowClosed: true };
      if (trade.state === 'closed') return { state: 'failed', reason: `${answer.reason}: closed, refunded in full already` };
      throw new GatewayError(`${gateway.channel} refund refused (${answer.reason}) while the trade is ${trade.state}`);
    }
    default:
      return answer;
  }
}

/** The query's answer; its failure says what it was asked after (the refund's last error, for a person). */
async function explaining<T>(after: string, query: Promise<T>): Promise<T> {
  try {
    return await query;
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    throw new GatewayError(`${after}; then ${error.message}`, { cause: error });
  }
}

/** A refusal of the refund call, unless the query shows this number did go through (an earlier call took it). */
async function confirmRefusal(query: () => Promise<RefundState>, refusal: Extract<RefundState, { state: 'failed' }>): Promise<RefundState> {
  const check = await query();
  return check.state === 'succeeded' || check.state === 'processing' || check.state === 'abnormal' ? check : refusal;
}
