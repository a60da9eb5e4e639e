import { channelOf, type PayMethod } from '../domain/model';
import { TradeAlreadyPaid, type PaymentGateway } from '../gateways/paymentGateway';
import type { Channel } from '../domain/model';

/**
 * Makes sure an attempt can no longer be paid at its gateway before its points go elsewhere:
 * 'closed' once the gateway has closed it (or never saw it), 'paid' if the money already arrived.
 * @throws GatewayError when the gateway cannot say
 */
export async function closeUnpaidTrade(gateways: Record<Channel, PaymentGateway>, outTradeNo: string, method: PayMethod): Promise<'closed' | 'paid'> {
  const channel = channelOf(method);
  if (!channel) return 'closed';
  const gateway = gateways[channel];
  try {
    const trade = await gateway.queryTrade(outTradeNo);
    if (trade.state === 'paid') return 'paid';
    if (trade.state !== 'closed') await gateway.closeTrade(outTradeNo);
    return 'closed';
  } catch (error) {
    if (error instanceof TradeAlreadyPaid) return 'paid';
    throw error;
  }
}
