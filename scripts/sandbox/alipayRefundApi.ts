/**
 * Alipay refunds on the openapi gateway (the request's signature is checked by AlipayApi before these run):
 *   method=alipay.trade.refund                  synchronous: 10000 with fund_change Y means refunded
 *   method=alipay.trade.fastpay.refund.query    refund_status REFUND_SUCCESS, or nothing for "no such refund"
 * A refund also sends, `settleAfterMs` later and only if the merchant has the notification switched on
 * (`alipayNotify`), the trade_status_sync notification to the payment's notify_url: TRADE_CLOSED once the
 * whole trade is refunded, TRADE_SUCCESS after a partial refund, with refund_fee, gmt_refund and out_biz_no.
 *
 * @example
 * const refunds = new AlipayRefundApi(creds.alipay, trades, desk);
 * refunds.refund(params); // Reply
 */
import { fenToYuan, yuanToFen } from '../../lib/domain/money';
import { toBeijingDateTime } from '../../lib/domain/time';
import { alipayError, alipayReply } from './alipayReply';
import { ALIPAY_AMOUNT, tradeNamedBy } from './alipayRequest';
import type { SandboxCredentials } from './credentials';
import { alipayRefundNotificationFields, buildAlipayPaymentNotification, deliverNotification } from './notifications';
import type { SandboxRefund } from './refund';
import type { RefundDesk } from './refundDesk';
import type { Reply } from './reply';
import type { SandboxTrade } from './trade';
import type { TradeBook } from './tradeBook';

const REFUND = 'alipay.trade.refund';
const REFUND_QUERY = 'alipay.trade.fastpay.refund.query';
const OUT_REQUEST_NO = /^[A-Za-z0-9_-]{1,64}$/;

export class AlipayRefundApi {
  constructor(
    private readonly creds: SandboxCredentials['alipay'],
    private readonly trades: TradeBook,
    private readonly desk: RefundDesk,
  ) {}

  /** A refused refund: 40004 with the sub_code, and the trade's figures as Alipay adds them. */
  private refused(subCode: string, subMsg: string, outTradeNo?: string, trade?: SandboxTrade): Reply {
    return alipayError(this.creds, REFUND, '40004', subCode, subMsg, {
      ...(outTradeNo ? { out_trade_no: outTradeNo } : {}),
      refund_fee: fenToYuan(trade?.refundedFen ?? 0),
      send_back_fee: '0.00',
    });
  }

  /** The answer to a refund that was made, now or (`fund_change` N) before. */
  private refunded(trade: SandboxTrade, refund: SandboxRefund, fundChange: 'Y' | 'N'): Reply {
    const node: Record<string, unknown> = { code: '10000', msg: 'Success' };
    if (trade.payer?.buyerLogonId) node.buyer_logon_id = trade.payer.buyerLogonId;
    node.fund_change = fundChange;
    node.gmt_refund_pay = toBeijingDateTime(new Date(refund.succeededAt!));
    node.out_trade_no = trade.outTradeNo;
    node.refund_fee = fenToYuan(trade.refundedFen ?? 0);
    node.trade_no = trade.transactionId;
    return alipayReply(this.creds, REFUND, node);
  }

  refund(params: Record<string, string>): Reply {
    const named = tradeNamedBy(this.creds, this.trades, REFUND, params);
    if ('refusal' in named) return named.refusal;
    const { biz, trade, outTradeNo } = named;
    const { refund_amount: refundAmount, out_request_no: outRequestNo, refund_reason: reason } = biz;
    if (outRequestNo !== undefined && (typeof outRequestNo !== 'string' || !OUT_REQUEST_NO.test(outRequestNo))) {
      return this.refused('ACQ.INVALID_PARAMETER', '参数无效: out_request_no 应为 1-64 位字母、数字、_ 或 -', outTradeNo, trade);
    }
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 256)) {
      return this.refused('ACQ.INVALID_PARAMETER', '参数无效: refund_reason 长度不超过 256', outTradeNo, trade);
    }
    if (typeof refundAmount !== 'string' || !ALIPAY_AMOUNT.test(refundAmount)) {
      return this.refused('ACQ.INVALID_PARAMETER', '参数无效: refund_amount 应为元，最多两位小数', outTradeNo, trade);
    }
    if (!trade) return this.refused('ACQ.TRADE_NOT_EXIST', '交易不存在', outTradeNo);
    const amountFen = yuanToFen(refundAmount)!;
    // Without out_request_no a refund is numbered by its trade: only one, of the whole amount.
    const requestNo = outRequestNo ?? trade.outTradeNo;

    const existing = this.desk.book.get('alipay', trade.outTradeNo, requestNo);
    if (existing) {
      // The same out_request_no is the same refund: 10000 again, but no money moves (fund_change N).
      if (existing.amountFen !== amountFen) return this.refused('ACQ.DISCORDANT_REPEAT_REQUEST', '不一致的请求', trade.outTradeNo, trade);
      return this.refunded(trade, existing, 'N');
    }
    if (amountFen < 1) return this.refused('ACQ.REASON_TRADE_REFUND_FEE_ERR', '退款金额无效', trade.outTradeNo, trade);
    if (trade.status === 'UNPAID') return this.refused('ACQ.TRADE_STATUS_ERROR', '交易状态非法', trade.outTradeNo, trade);
    if (trade.status === 'CLOSED' || (trade.refundedFen ?? 0) >= trade.amountFen)
      return this.refused('ACQ.TRADE_HAS_CLOSE', '交易已关闭', trade.outTradeNo, trade);
    if (trade.finishedAt) return this.refused('ACQ.TRADE_HAS_FINISHED', '交易已完结', trade.outTradeNo, trade);
    if (amountFen > this.desk.book.refundableFen(trade) || (outRequestNo === undefined && amountFen !== trade.amountFen)) {
      return this.refused('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限', trade.outTradeNo, trade);
    }

    const failure = this.desk.takeFailure('alipay');
    if (failure === 'balance') return this.refused('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足', trade.outTradeNo, trade);
    const refund = this.desk.book.open(trade, {
      outRefundNo: requestNo,
      amountFen,
      reason: reason as string | undefined,
      notifyUrl: trade.notifyUrl,
      request: biz,
    });
    this.desk.book.settle(trade, refund, 'SUCCESS');
    const { alipayNotify, settleAfterMs } = this.desk.settings;
    if (failure !== 'silent' && alipayNotify && refund.notifyUrl) {
      // Built now: the notification tells the trade as this refund left it, whatever follows.
      const built = buildAlipayPaymentNotification(this.creds, alipayRefundNotificationFields(trade, refund, this.creds));
      const url = refund.notifyUrl;
      this.desk.later(settleAfterMs, async (signal) => {
        refund.notification = await deliverNotification(url, { headers: { 'Content-Type': `${built.contentType}; charset=utf-8` }, body: built.body }, signal);
      });
    }
    return this.refunded(trade, refund, 'Y');
  }

  query(params: Record<string, string>): Reply {
    const named = tradeNamedBy(this.creds, this.trades, REFUND_QUERY, params);
    if ('refusal' in named) return named.refusal;
    const { biz, trade, outTradeNo } = named;
    const outRequestNo = biz.out_request_no;
    if (typeof outRequestNo !== 'string' || !outRequestNo) {
      return alipayError(this.creds, REFUND_QUERY, '40004', 'ACQ.INVALID_PARAMETER', '参数无效: out_request_no 不能为空');
    }
    if (!trade) return alipayError(this.creds, REFUND_QUERY, '40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', { out_trade_no: outTradeNo });
    const refund = this.desk.book.get('alipay', trade.outTradeNo, outRequestNo);
    const options = Array.isArray(biz.query_options) ? biz.query_options : [];
    const node: Record<string, unknown> = { code: '10000', msg: 'Success' };
    // No such refund (never received, or refused): 10000 all the same, without refund_status or amounts.
    if (refund?.status === 'SUCCESS' && options.includes('gmt_refund_pay')) node.gmt_refund_pay = toBeijingDateTime(new Date(refund.succeededAt!));
    node.out_request_no = outRequestNo;
    node.out_trade_no = trade.outTradeNo;
    if (refund?.status === 'SUCCESS') {
      node.refund_amount = fenToYuan(refund.amountFen);
      node.refund_status = 'REFUND_SUCCESS';
      node.total_amount = fenToYuan(trade.amountFen);
    }
    node.trade_no = trade.transactionId;
    return alipayReply(this.creds, REFUND_QUERY, node);
  }
}
