import { type AttemptSummary, type Channel, channelOf } from '../domain/model';
import { type PaymentGateway, TradeAlreadyPaid } from '../gateways/paymentGateway';

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
  try {
    const trade = await gateway.queryTrade(attempt.outTradeNo);
    if (trade.state === 'paid') return 'paid';
    if (trade.state === 'closed') return 'closed';
    if (trade.state === 'not_found' && channel === 'wechat' && now.getTime() - Date.parse(attempt.createdAt) < PREPAY_IN_FLIGHT_MS) return 'in_flight';
    await gateway.closeTrade(attempt.outTradeNo);
    return 'closed';
  } catch (error) {
    if (error instanceof TradeAlreadyPaid) return 'paid';
    throw error;
  }
}
