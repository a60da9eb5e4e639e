import { toBeijingRfc3339 } from '../../lib/domain/time';
import type { SandboxCredentials } from './credentials';
import type { SandboxTrade } from './trade';

/**
 * The transaction object WeChat Pay v3 shows for a trade: the query answer, and the decrypted
 * `resource` of a payment callback. Keys in WeChat's (alphabetical) order; `payer`, `payer_total`,
 * `transaction_id`, `trade_type`, `success_time`, `bank_type` only once paid, as WeChat does. A trade refunded
 * in full is `REFUND` (转入退款), still with its payment's fields; a partly refunded one stays `SUCCESS`.
 *
 * @example
 * const body = JSON.stringify(wechatTransactionResource(trade, creds.wechat));
 */
export function wechatTransactionResource(trade: SandboxTrade, creds: SandboxCredentials['wechat']): Record<string, unknown> {
  const paid = trade.status === 'PAID';
  const amount: Record<string, unknown> = { currency: 'CNY', payer_currency: 'CNY' };
  if (paid) amount.payer_total = trade.amountFen;
  amount.total = trade.amountFen;
  const tx: Record<string, unknown> = { amount, appid: creds.appid };
  if (trade.attach !== undefined) tx.attach = trade.attach;
  if (paid) tx.bank_type = 'OTHERS';
  tx.mchid = creds.mchid;
  tx.out_trade_no = trade.outTradeNo;
  if (paid) tx.payer = { openid: trade.payer?.openid };
  tx.promotion_detail = [];
  if (!paid) tx.scene_info = { device_id: '' };
  if (paid) tx.success_time = toBeijingRfc3339(new Date(trade.paidAt!));
  const refunded = paid && (trade.refundedFen ?? 0) >= trade.amountFen;
  tx.trade_state = refunded ? 'REFUND' : { UNPAID: 'NOTPAY', PAID: 'SUCCESS', CLOSED: 'CLOSED' }[trade.status];
  tx.trade_state_desc = refunded ? '转入退款' : { UNPAID: '订单未支付', PAID: '支付成功', CLOSED: '订单已关闭' }[trade.status];
  if (paid) tx.trade_type = 'APP';
  if (paid) tx.transaction_id = trade.transactionId;
  return tx;
}
