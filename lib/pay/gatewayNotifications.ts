import type { Channel } from '../domain/model';
import { yuanToFen } from '../domain/money';
import { parseGatewayTime } from '../domain/time';
import type { OpenedWechatNotification } from '../gateways/wechatNotification';
import { log } from '../log';
import { metrics } from '../metrics';
import { completePayment, type CompletePaymentDeps, type CompletionOutcome } from './completePayment';

/** What WeChat expects back: 204 when handled; anything else (with FAIL) makes it send again. */
export interface WechatNotificationReply {
  statusCode: number;
  body?: { code: 'FAIL'; message: string };
}

export interface WechatNotificationDeps extends CompletePaymentDeps {
  wechat: { appid: string; mchid: string };
  /** Verifies and decrypts with the current keys of the stage's secret. */
  openWechatNotification(headers: Record<string, string | undefined>, rawBody: string): Promise<OpenedWechatNotification>;
}

const HANDLED: readonly CompletionOutcome[] = ['paid', 'duplicate', 'refund_required'];

/** Why a notification was refused: a metric dimension, so a closed set. */
type RefusalReason =
  | Exclude<OpenedWechatNotification, { ok: true }>['reason']
  | 'merchant_mismatch'
  | 'missing_fields'
  | 'unknown_attempt'
  | 'amount_mismatch';

function refused(channel: Channel, reason: RefusalReason, fields: Record<string, string | undefined> = {}): void {
  metrics.count('NotificationRefused', { channel, reason });
  // A verified notification that names another merchant, or a payment we did not expect, is a security or money matter.
  const serious = reason === 'merchant_mismatch' || reason === 'unknown_attempt' || reason === 'amount_mismatch';
  (serious ? log.error : log.warn)('notification refused', { channel, reason, ...fields });
}

function accepted(channel: Channel): void {
  metrics.count('NotificationAccepted', { channel });
}

function fail(statusCode: number, message: string): WechatNotificationReply {
  return { statusCode, body: { code: 'FAIL', message } };
}

/**
 * POST /notify/wechat. Verified and decrypted first; then the business fields must name our
 * merchant, app and attempt, with the attempt's exact amount. Only then is the payment recorded.
 * A forged, stale or mismatched notification changes nothing.
 */
export async function handleWechatNotification(
  deps: WechatNotificationDeps,
  headers: Record<string, string | undefined>,
  rawBody: string,
): Promise<WechatNotificationReply> {
  const opened = await deps.openWechatNotification(headers, rawBody);
  if (!opened.ok) {
    refused('wechat', opened.reason);
    return opened.reason === 'malformed' || opened.reason === 'undecryptable' ? fail(400, '报文无法解析') : fail(401, '签名验证失败');
  }
  const t = opened.transaction;
  log.bind({ out_trade_no: t.out_trade_no });
  if (t.mchid !== deps.wechat.mchid || t.appid !== deps.wechat.appid) {
    refused('wechat', 'merchant_mismatch');
    return fail(400, '商户号或应用不匹配');
  }
  // Only a successful payment changes anything; other events are acknowledged.
  if (opened.eventType !== 'TRANSACTION.SUCCESS' || t.trade_state !== 'SUCCESS') {
    accepted('wechat');
    return { statusCode: 204 };
  }
  if (!t.out_trade_no || !t.transaction_id || !Number.isSafeInteger(t.amount?.total)) {
    refused('wechat', 'missing_fields');
    return fail(400, '报文缺少字段');
  }

  const outcome = await completePayment(deps, {
    channel: 'wechat',
    outTradeNo: t.out_trade_no,
    transactionId: t.transaction_id,
    amountFen: t.amount?.total as number,
    paidAt: parseGatewayTime(t.success_time) ?? new Date().toISOString(),
  });
  if (HANDLED.includes(outcome)) {
    accepted('wechat');
    return { statusCode: 204 };
  }
  refused('wechat', outcome === 'unknown_attempt' ? 'unknown_attempt' : 'amount_mismatch');
  return outcome === 'unknown_attempt' ? fail(404, '订单不存在') : fail(400, '金额或支付方式不匹配');
}

export interface AlipayNotificationDeps extends CompletePaymentDeps {
  alipay: { appId: string; sellerId: string };
  verifyAlipayNotification(fields: Record<string, string>): Promise<boolean>;
}

/**
 * POST /notify/alipay, on the decoded form fields. Answers `success` when handled (duplicates
 * included) and `fail` otherwise, which makes Alipay send it again.
 */
export async function handleAlipayNotification(deps: AlipayNotificationDeps, fields: Record<string, string>): Promise<'success' | 'fail'> {
  if (!(await deps.verifyAlipayNotification(fields))) {
    refused('alipay', 'bad_signature');
    return 'fail';
  }
  log.bind({ out_trade_no: fields.out_trade_no });
  if (fields.app_id !== deps.alipay.appId || fields.seller_id !== deps.alipay.sellerId) {
    refused('alipay', 'merchant_mismatch');
    return 'fail';
  }
  if (fields.trade_status !== 'TRADE_SUCCESS' && fields.trade_status !== 'TRADE_FINISHED') {
    accepted('alipay');
    return 'success';
  }
  const amountFen = yuanToFen(fields.total_amount);
  if (!fields.out_trade_no || !fields.trade_no || amountFen === undefined) {
    refused('alipay', 'missing_fields');
    return 'fail';
  }

  const outcome = await completePayment(deps, {
    channel: 'alipay',
    outTradeNo: fields.out_trade_no,
    transactionId: fields.trade_no,
    amountFen,
    paidAt: parseGatewayTime(fields.gmt_payment) ?? new Date().toISOString(),
  });
  if (HANDLED.includes(outcome)) {
    accepted('alipay');
    return 'success';
  }
  refused('alipay', outcome === 'unknown_attempt' ? 'unknown_attempt' : 'amount_mismatch');
  return 'fail';
}
