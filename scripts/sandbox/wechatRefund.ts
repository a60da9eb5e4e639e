import { toBeijingRfc3339 } from '../../lib/domain/time';
import type { SandboxCredentials } from './credentials';
import type { SandboxRefund } from './refund';
import type { SandboxTrade } from './trade';

/** Where a WeChat refund of a balance ("零钱") payment lands; the sandbox's payers all pay from their balance. */
export const WECHAT_USER_RECEIVED_ACCOUNT = '支付用户零钱';

/**
 * The refund object WeChat Pay v3 answers to a refund create and a refund query
 * (`POST /v3/refund/domestic/refunds`, `GET /v3/refund/domestic/refunds/{out_refund_no}`), keys in WeChat's
 * (alphabetical) order; `success_time` only once SUCCESS. No coupons in the sandbox: the payer paid all of it.
 *
 * @example
 * const body = JSON.stringify(wechatRefundResource(refund, trade));
 */
export function wechatRefundResource(refund: SandboxRefund, trade: SandboxTrade): Record<string, unknown> {
  const resource: Record<string, unknown> = {
    amount: {
      currency: 'CNY',
      discount_refund: 0,
      payer_refund: refund.amountFen,
      payer_total: trade.amountFen,
      refund: refund.amountFen,
      settlement_refund: refund.amountFen,
      settlement_total: trade.amountFen,
      total: trade.amountFen,
    },
    channel: 'ORIGINAL',
    create_time: toBeijingRfc3339(new Date(refund.createdAt)),
    funds_account: refund.request.funds_account === 'AVAILABLE' ? 'AVAILABLE' : 'UNSETTLED',
    out_refund_no: refund.outRefundNo,
    out_trade_no: refund.outTradeNo,
    promotion_detail: [],
    refund_id: refund.refundId,
    status: refund.status,
  };
  if (refund.status === 'SUCCESS') resource.success_time = toBeijingRfc3339(new Date(refund.succeededAt!));
  resource.transaction_id = trade.transactionId;
  resource.user_received_account = WECHAT_USER_RECEIVED_ACCOUNT;
  return resource;
}

/**
 * The decrypted `resource` of a WeChat refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED), in the
 * order of WeChat's own example; `success_time` only for SUCCESS.
 *
 * @example
 * const n = buildWechatRefundNotification(creds.wechat, wechatRefundNotificationResource(refund, trade, creds.wechat));
 */
export function wechatRefundNotificationResource(refund: SandboxRefund, trade: SandboxTrade, creds: SandboxCredentials['wechat']): Record<string, unknown> {
  const resource: Record<string, unknown> = {
    mchid: creds.mchid,
    out_trade_no: refund.outTradeNo,
    transaction_id: trade.transactionId,
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_status: refund.status,
  };
  if (refund.status === 'SUCCESS') resource.success_time = toBeijingRfc3339(new Date(refund.succeededAt!));
  resource.user_received_account = WECHAT_USER_RECEIVED_ACCOUNT;
  resource.amount = { total: trade.amountFen, refund: refund.amountFen, payer_total: trade.amountFen, payer_refund: refund.amountFen };
  return resource;
}
