/**
 * WeChat Pay v3 refunds, as https://api.mch.weixin.qq.com answers a direct merchant (the signature is
 * checked by WechatPayApi before these run):
 *   POST /v3/refund/domestic/refunds                    create: the refund object, PROCESSING (or settled at once)
 *   GET  /v3/refund/domestic/refunds/{out_refund_no}    query: the refund object
 * A refund settles `settleAfterMs` later (SUCCESS, or ABNORMAL / CLOSED when asked for) and WeChat then POSTs
 * the signed, encrypted REFUND.* notification to the refund's `notify_url`.
 *
 * @example
 * const refunds = new WechatRefundApi(creds.wechat, trades, desk);
 * refunds.create(body); // Reply
 */

import type { SandboxCredentials } from './credentials';
import { buildWechatRefundNotification, deliverNotification } from './notifications';
import type { SandboxRefund } from './refund';
import type { RefundDesk } from './refundDesk';
import type { Reply } from './reply';
import { isHttpUrl, parseJsonObject } from './requestValues';
import { SandboxGatewayError } from './sandboxGatewayError';
import type { SandboxTrade } from './trade';
import type { TradeBook } from './tradeBook';
import { wechatRefundNotificationResource, wechatRefundResource } from './wechatRefund';
import { wechatError, wechatReply } from './wechatReply';

const OUT_REFUND_NO = /^[A-Za-z0-9_\-|*@]{1,64}$/;
/** "交易时间超过一年的订单无法提交退款": counted from the payment, 365 days. */
const REFUND_PERIOD_MS = 365 * 24 * 60 * 60 * 1000;

const isPositiveFen = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

export class WechatRefundApi {
  constructor(
    private readonly creds: SandboxCredentials['wechat'],
    private readonly trades: TradeBook,
    private readonly desk: RefundDesk,
  ) {}

  private paramError(message: string, field: string): Reply {
    return wechatError(this.creds, 400, 'PARAM_ERROR', `参数错误: ${message}`, { location: 'body', field });
  }

  create(body: string): Reply {
    const req = parseJsonObject(body);
    if (!req) return wechatError(this.creds, 400, 'PARAM_ERROR', '请求体不是合法的 JSON 对象');
    const { out_refund_no: outRefundNo, transaction_id: transactionId, out_trade_no: outTradeNo, reason, notify_url: notifyUrl } = req;
    const amount = req.amount as Record<string, unknown> | undefined;
    if (typeof outRefundNo !== 'string' || !OUT_REFUND_NO.test(outRefundNo)) {
      return this.paramError('out_refund_no 应为 1-64 位数字、大小写字母或 _-|*@', 'out_refund_no');
    }
    if (transactionId === undefined && outTradeNo === undefined) return this.paramError('transaction_id 与 out_trade_no 不能同时为空', 'out_trade_no');
    if (transactionId !== undefined && (typeof transactionId !== 'string' || !transactionId))
      return this.paramError('transaction_id 应为字符串', 'transaction_id');
    if (outTradeNo !== undefined && (typeof outTradeNo !== 'string' || !outTradeNo)) return this.paramError('out_trade_no 应为字符串', 'out_trade_no');
    if (reason !== undefined && (typeof reason !== 'string' || reason.length === 0 || reason.length > 80)) return this.paramError('reason 长度 1-80', 'reason');
    if (notifyUrl !== undefined && !isHttpUrl(notifyUrl)) return this.paramError('notify_url 应为 http(s) URL', 'notify_url');
    if (req.funds_account !== undefined && req.funds_account !== 'AVAILABLE') return this.paramError('funds_account 仅可为 AVAILABLE', 'funds_account');
    if (!amount || typeof amount !== 'object') return this.paramError('amount 必填', 'amount');
    if (!isPositiveFen(amount.refund)) return this.paramError('amount.refund 应为正整数（单位：分）', 'amount.refund');
    if (!isPositiveFen(amount.total)) return this.paramError('amount.total 应为正整数（单位：分）', 'amount.total');
    if (amount.currency !== 'CNY') return this.paramError('amount.currency 仅支持 CNY', 'amount.currency');

    // transaction_id wins when both are given, as WeChat documents.
    const trade = typeof transactionId === 'string' ? this.trades.getByTransactionId('wechat', transactionId) : this.trades.get('wechat', outTradeNo as string);
    const existing = this.desk.book.getWechat(outRefundNo);
    if (existing) {
      // The same out_refund_no is the same refund: answered again, never made twice.
      if (!trade || existing.outTradeNo !== trade.outTradeNo || existing.amountFen !== amount.refund) {
        return wechatError(this.creds, 400, 'INVALID_REQUEST', '订单金额或退款金额与之前请求不一致，请核实后再试');
      }
      return wechatReply(this.creds, 200, wechatRefundResource(existing, trade));
    }
    // WeChat knows a trade for refunds only once it is paid (an unpaid or closed one is "not found" too).
    if (trade?.status !== 'PAID') return wechatError(this.creds, 404, 'RESOURCE_NOT_EXISTS', '订单不存在');
    if (amount.total !== trade.amountFen) return wechatError(this.creds, 400, 'INVALID_REQUEST', '订单金额与原订单金额不一致，请核实后再试');
    if (Date.now() - Date.parse(trade.paidAt!) > REFUND_PERIOD_MS) return wechatError(this.creds, 400, 'INVALID_REQUEST', '超期订单不允许退款');
    if ((trade.refundedFen ?? 0) >= trade.amountFen) return wechatError(this.creds, 400, 'INVALID_REQUEST', '订单已全额退款');
    // What is being refunded (PROCESSING) is not refundable either.
    if (amount.refund > this.desk.book.refundableFen(trade)) return wechatError(this.creds, 400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额');

    const failure = this.desk.takeFailure('wechat');
    if (failure === 'balance') return wechatError(this.creds, 403, 'NOT_ENOUGH', '基本账户余额不足，请充值后重新发起');
    const refund = this.desk.book.open(trade, {
      outRefundNo,
      amountFen: amount.refund,
      reason: reason as string | undefined,
      notifyUrl: notifyUrl as string | undefined,
      request: req,
    });
    const outcome = failure === 'abnormal' ? 'ABNORMAL' : failure === 'closed' ? 'CLOSED' : 'SUCCESS';
    const notify = failure !== 'silent';
    const { wechatMode, settleAfterMs } = this.desk.settings;
    if (wechatMode === 'immediate') {
      this.desk.book.settle(trade, refund, outcome);
      if (notify) this.desk.later(0, (signal) => this.notify(trade, refund, signal));
    } else {
      this.desk.later(settleAfterMs, async (signal) => {
        this.desk.book.settle(trade, refund, outcome);
        if (notify) await this.notify(trade, refund, signal);
      });
    }
    return wechatReply(this.creds, 200, wechatRefundResource(refund, trade));
  }

  /**
   * What the merchant does about an ABNORMAL refund (in the merchant platform, or
   * `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund`): the same refund, PROCESSING again,
   * then SUCCESS `settleAfterMs` later (to the payer's other bank card or the merchant's, which the sandbox does
   * not tell apart) with its REFUND.SUCCESS notification.
   * @throws SandboxGatewayError when the refund is unknown or not ABNORMAL
   */
  resumeAbnormal(outRefundNo: string): void {
    const refund = this.desk.book.getWechat(outRefundNo);
    const trade = refund && this.trades.get('wechat', refund.outTradeNo);
    if (!refund || !trade) throw new SandboxGatewayError('TRADE_NOT_FOUND', `no WeChat refund ${outRefundNo}`, 404);
    if (!this.desk.book.resume(refund)) throw new SandboxGatewayError('INVALID_REQUEST', `refund ${outRefundNo} is ${refund.status}, not ABNORMAL`);
    this.desk.later(this.desk.settings.settleAfterMs, async (signal) => {
      this.desk.book.settle(trade, refund, 'SUCCESS');
      await this.notify(trade, refund, signal);
    });
  }

  query(outRefundNo: string): Reply {
    const refund = this.desk.book.getWechat(outRefundNo);
    const trade = refund && this.trades.get('wechat', refund.outTradeNo);
    if (!refund || !trade) return wechatError(this.creds, 404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    return wechatReply(this.creds, 200, wechatRefundResource(refund, trade));
  }

  /** Sends the refund's notification to its notify_url (none given: WeChat would use the merchant platform's, which the sandbox has not). */
  private async notify(trade: SandboxTrade, refund: SandboxRefund, signal: AbortSignal): Promise<void> {
    if (!refund.notifyUrl) return;
    const notification = buildWechatRefundNotification(this.creds, wechatRefundNotificationResource(refund, trade, this.creds));
    refund.notification = await deliverNotification(refund.notifyUrl, notification, signal);
  }
}
