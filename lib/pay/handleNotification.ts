import type { Channel, GatewayRefundReport } from '../domain/model';
import type { GatewayRequest, NotificationChannel, NotificationVerdict } from '../gateways/paymentGateway';
import { log } from '../log';
import { metrics } from '../metrics';
import { type CompletePaymentDeps, type CompletionOutcome, completePayment } from './completePayment';
import { recordRefundAbnormal, recordRefundResult } from './recordRefundResult';

const HANDLED: readonly CompletionOutcome[] = ['paid', 'duplicate', 'conflict', 'refund_required'];

/**
 * A gateway's notification, whichever the channel: its adapter opens it (verified, decrypted,
 * checked to name this merchant), then a payment is recorded as any payment the gateway vouches for
 * (`completePayment`), and a refund's result as any the gateway reports (`recordRefundResult`). A
 * forged, stale or mismatched notification changes nothing. Errors are left to the caller, which
 * answers `retry`.
 */
export async function handleNotification(deps: CompletePaymentDeps, notifications: NotificationChannel, request: GatewayRequest): Promise<NotificationVerdict> {
  const { channel } = notifications;
  const opened = await notifications.open(request);
  if (opened.outTradeNo) log.bind({ out_trade_no: opened.outTradeNo });
  if (opened.kind === 'refused') return refused(channel, opened.reason);
  if (opened.kind === 'ignored') return handled(channel);
  if (opened.kind === 'refund') return refundReported(deps, opened.report);

  const outcome = await completePayment(deps, opened.payment);
  if (HANDLED.includes(outcome)) return handled(channel);
  return refused(channel, outcome === 'unknown_attempt' ? 'unknown_attempt' : 'amount_mismatch');
}

/** A refund's result, for a refund we recorded with these numbers and this amount: anything else changes nothing. */
async function refundReported(deps: CompletePaymentDeps, report: GatewayRefundReport): Promise<NotificationVerdict> {
  log.bind({ out_refund_no: report.outRefundNo });
  const refund = await deps.store.getRefund(report.outRefundNo);
  if (!refund) return refused(report.channel, 'unknown_refund');
  if (refund.channel !== report.channel || refund.outTradeNo !== report.outTradeNo || refund.cashFen !== report.refundFen) {
    log.error('refund notification does not match its refund', { out_trade_no: report.outTradeNo, refund_fen: report.refundFen, expected_fen: refund.cashFen });
    return refused(report.channel, 'amount_mismatch');
  }
  if (report.state === 'abnormal') {
    // Not a result: still pending until a person sends it on. Once final, a late ABNORMAL changes nothing.
    if (refund.status === 'pending') await recordRefundAbnormal(deps, refund);
    return handled(report.channel);
  }
  await recordRefundResult(
    deps,
    refund.outRefundNo,
    report.state === 'succeeded' ? { state: 'succeeded', refundedAt: report.refundedAt } : { state: 'failed', reason: report.failureReason ?? 'FAILED' },
  );
  return handled(report.channel);
}

function handled(channel: Channel): NotificationVerdict {
  metrics.count('NotificationAccepted', { channel });
  return { kind: 'handled' };
}

function refused(channel: Channel, reason: Extract<NotificationVerdict, { kind: 'refused' }>['reason']): NotificationVerdict {
  metrics.count('NotificationRefused', { channel, reason });
  // A verified notification that names another merchant, or a payment we did not expect, is a security or money matter.
  const serious = reason === 'merchant_mismatch' || reason === 'unknown_attempt' || reason === 'unknown_refund' || reason === 'amount_mismatch';
  (serious ? log.error : log.warn)('notification refused', { channel, reason });
  return { kind: 'refused', reason };
}
