import { channelOf, type Channel, type PayMethod } from '../domain/model';
import { TradeAlreadyPaid, type PaymentGateway } from '../gateways/paymentGateway';

/**
 * Makes sure an attempt can no longer be paid at its gateway before its points go elsewhere:
 * 'closed' once the gateway has closed it, 'unknown' when the gateway has never seen it (closed
 * for WeChat, unless its prepay is still on the way; an Alipay order string can still be opened
 * until it expires), 'paid' if the money already arrived.
 * @throws GatewayError when the gateway cannot say
 */
export async function closeUnpaidTrade(gateways: Record<Channel, PaymentGateway>, outTradeNo: string, method: PayMethod): Promise<'closed' | 'unknown' | 'paid'> {
  const channel = channelOf(method);
  if (!channel) return 'closed';
  const gateway = gateways[channel];
  try {
    const trade = await gateway.queryTrade(outTradeNo);
    if (trade.state === 'paid') return 'paid';
    if (trade.state === 'closed') return 'closed';
    await gateway.closeTrade(outTradeNo);
    return trade.state === 'not_found' ? 'unknown' : 'closed';
  } catch (error) {
    if (error instanceof TradeAlreadyPaid) return 'paid';
    throw error;
  }
}
