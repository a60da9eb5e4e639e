import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import * as v from 'valibot';
import type { App } from '../app';
import { REFUND_ERRORS, type RefundErrorCode, RefundRefused } from '../domain/errors';
import type { Refund } from '../domain/model';
import { fenToYuan } from '../domain/money';
import { toBeijingRfc3339 } from '../domain/time';
import { waitForSecret } from '../http/waitForSecret';
import { log, logger } from '../log';
import { type RefundAnswer, requestRefund } from '../pay/requestRefund';

/** What an operator invokes refundOrder with (`aws lambda invoke`, `npm run refund`). */
const refundEventSchema = v.object({
  order_id: v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
  reason: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(80)),
  /** Refund this refund case of the order instead of the order's own payment. */
  out_trade_no: v.optional(v.pipe(v.string(), v.regex(/^\d+T\d+$/))),
  /** The cash was repaid outside the gateways, and how: recorded as a refund done, nothing sent to a gateway. */
  repaid_outside: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(200))),
});

export interface RefundView {
  out_refund_no: string;
  out_trade_no: string;
  kind: Refund['kind'];
  status: Refund['status'];
  refund_price: string;
  refund_integral: number;
  reason: string;
  created_at: string;
  refunded_at: string | null;
  failure_reason: string | null;
  /** How the cash was repaid outside the gateways, as a person recorded it; null for a refund through its gateway. */
  repaid_outside: string | null;
}

export type RefundOrderReply = { order_id: number; order_status: string; refund: RefundView } | { error: RefundErrorCode; message: string };

/**
 * The refundOrder function: no HTTP route, only IAM may invoke it. It always returns a JSON answer,
 * never throws: the refund as it stands, or `{error, message}` saying why nothing (more) was done.
 */
export function refundOrderHandler(app: Pick<App, 'ready' | 'store' | 'gateways' | 'now'>) {
  return middy<unknown, RefundOrderReply>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: function answerInternalError(request) {
        log.error('refund request failed', {}, request.error);
        request.response = refused('INTERNAL_ERROR');
      },
    })
    .use(waitForSecret(app))
    .handler(async (event) => {
      const parsed = v.safeParse(refundEventSchema, event);
      if (!parsed.success) return refused('INVALID_REQUEST');
      try {
        const { order_id, reason, out_trade_no, repaid_outside } = parsed.output;
        const answer = await requestRefund(app, { orderId: order_id, reason, outTradeNo: out_trade_no, repaidOutside: repaid_outside });
        return view(answer);
      } catch (error) {
        if (!(error instanceof RefundRefused)) throw error;
        log.warn('refund refused', { code: error.code });
        return { error: error.code, message: error.message };
      }
    });
}

function refused(code: RefundErrorCode): RefundOrderReply {
  return { error: code, message: REFUND_ERRORS[code] };
}

function view({ order, refund }: RefundAnswer): RefundOrderReply {
  return {
    order_id: order.orderId,
    order_status: order.status,
    refund: {
      out_refund_no: refund.outRefundNo,
      out_trade_no: refund.outTradeNo,
      kind: refund.kind,
      status: refund.status,
      refund_price: fenToYuan(refund.cashFen),
      refund_integral: refund.points,
      reason: refund.reason,
      created_at: toBeijingRfc3339(new Date(refund.createdAt)),
      refunded_at: refund.refundedAt ? toBeijingRfc3339(new Date(refund.refundedAt)) : null,
      failure_reason: refund.failureReason ?? null,
      repaid_outside: refund.repaidOutside ?? null,
    },
  };
}
