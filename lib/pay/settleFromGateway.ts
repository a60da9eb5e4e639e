import { type Attempt, channelOf } from '../domain/model';
import { parseGatewayTime, systemClock } from '../domain/time';
import type { TradeState } from '../gateways/paymentGateway';
import { type CompletePaymentDeps, type CompletionOutcome, completePayment } from './completePayment';

/**
 * Asks the attempt's gateway what happened to it, and records the payment exactly as a
 * notification would when the gateway says it is paid (the query answer is signature-checked).
 * @throws GatewayError when the gateway cannot say
 */
export async function settleFromGateway(deps: CompletePaymentDeps, attempt: Attempt): Promise<{ trade: TradeState; outcome?: CompletionOutcome }> {
  const channel = channelOf(attempt.method);
  if (!channel) return { trade: { state: 'not_found' } };
  const trade = await deps.gateways[channel].queryTrade(attempt.outTradeNo);
  if (trade.state !== 'paid') return { trade };
  const outcome = await completePayment(deps, {
    channel,
    outTradeNo: attempt.outTradeNo,
    transactionId: trade.transactionId,
    amountFen: trade.amountFen,
    paidAt: parseGatewayTime(trade.paidAt) ?? (deps.now ?? systemClock)().toISOString(),
  });
  return { trade, outcome };
}
