import { type AttemptSummary, type Channel, channelOf } from '../domain/model';
import { GatewayError, type PaymentGateway, TradeAlreadyPaid } from '../gateways/paymentGateway';

/** Longer than a prepay call can take (the gateway timeout is 5 s). */
const PREPAY_IN_FLIGHT_MS = 15_000;

/**
 * Makes sure an attempt can no longer be paid at its gateway before its points or its order go
 * elsewhere: 'closed' once the gateway has closed it or never saw it (an Alipay order string can still
 * be opened until it expires: the sweeper watches released attempts until then), 'paid' if the money
 * already arrived, 'in_flight' for a WeChat attempt the gateway has not seen yet whose prepay may
 * still be on the way (closing now would not stop the prepay that follows).
 * @throws GatewayError when the gateway cannot say
 */
export async function closeUnpaidTrade(
  gateways: Record<Channel, PaymentGateway>,
  attempt: Pick<AttemptSummary, 'outTradeNo' | 'method' | 'createdAt'>,
  now: Date,
): Promise<'closed' | 'paid' | 'in_flight'> {
  const channel = channelOf(attempt.method);
  if (!channel) return 'closed';
  const gateway = gateways[channel];
  const trade = await gateway.queryTrade(attempt.outTradeNo);
  if (trade.state === 'paid') return 'paid';
  if (trade.state === 'closed') return 'closed';
  if (trade.state === 'not_found' && channel === 'wechat' && now.getTime() - Date.parse(attempt.createdAt) < PREPAY_IN_FLIGHT_MS) return 'in_flight';
  try {
    await gateway.closeTrade(attempt.outTradeNo);
    return 'closed';
  } catch (error) {
    if (error instanceof TradeAlreadyPaid) return 'paid';
    if (!(error instanceof GatewayError)) throw error;
    // Refused without saying why (Alipay's TRADE_STATUS_ERROR: paid or closed since the query above, or
    // a close sent again by the HTTP client after the first went through): the query says which.
    const since = await gateway.queryTrade(attempt.outTradeNo);
    if (since.state === 'paid') return 'paid';
    if (since.state === 'closed') return 'closed';
    throw error;
  }
}
