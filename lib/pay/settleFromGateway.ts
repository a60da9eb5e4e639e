import { type Attempt, channelOf, type GatewayPayment } from '../domain/model';
import { parseGatewayTime, systemClock } from '../domain/time';
import type { TradeState } from '../gateways/paymentGateway';
import { type CompletePaymentDeps, type CompletionOutcome, completePayment, type KnownState } from './completePayment';

/**
 * Asks the attempt's gateway what happened to it, and records the payment exactly as a
 * notification would when the gateway says it is paid (the query answer is signature-checked).
 * `known`: the attempt and its order just read strongly consistent (the status call), so the
 * recording need not read them again; without it (the sweeper's attempt comes from the index,
 * which may lag) they are read afresh.
 * @throws GatewayError when the gateway cannot say
 */
export async function settleFromGateway(
  deps: CompletePaymentDeps,
  attempt: Attempt,
  known?: KnownState,
): Promise<{ trade: TradeState; outcome?: CompletionOutcome; payment?: GatewayPayment }> {
  const channel = channelOf(attempt.method);
  if (!channel) return { trade: { state: 'not_found' } };
  const trade = await deps.gateways[channel].queryTrade(attempt.outTradeNo);
  if (trade.state !== 'paid') return { trade };
  const payment: GatewayPayment = {
    channel,
    outTradeNo: attempt.outTradeNo,
    transactionId: trade.transactionId,
    amountFen: trade.amountFen,
    paidAt: parseGatewayTime(trade.paidAt) ?? (deps.now ?? systemClock)().toISOString(),
  };
  return { trade, outcome: await completePayment(deps, payment, known), payment };
}
