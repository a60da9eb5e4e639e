import { yuanToFen } from '../domain/money';
import { parseGatewayTime } from '../domain/time';
import { openWechatNotification } from '../gateways/wechatNotification';
import type { WechatSignatureVerifier } from '../gateways/wechatSignature';
import { log } from '../log';
import { completePayment, type CompletePaymentDeps, type CompletionOutcome } from './completePayment';

/** What WeChat expects back: 204 when handled; anything else (with FAIL) makes it send again. */
export interface WechatNotificationReply {
  statusCode: number;
  body?: { code: 'FAIL'; message: string };
}

export interface WechatNotificationDeps extends CompletePaymentDeps {
  wechat: { appid: string; mchid: string; apiV3Key: string };
  wechatVerifier: WechatSignatureVerifier;
}

const HANDLED: readonly CompletionOutcome[] = ['paid', 'duplicate', 'refund_required'];

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
  const opened = openWechatNotification(headers, rawBody, deps.wechatVerifier, deps.wechat.apiV3Key);
  if (!opened.ok) {
    log.warn('wechat notification refused', { reason: opened.reason });
    return opened.reason === 'malformed' || opened.reason === 'undecryptable' ? fail(400, '报文无法解析') : fail(401, '签名验证失败');
  }
  const t = opened.transaction;
  if (t.mchid !== deps.wechat.mchid || t.appid !== deps.wechat.appid) {
    log.error('wechat notification for another merchant or app', { outTradeNo: t.out_trade_no });
    return fail(400, '商户号或应用不匹配');
  }
  // Only a successful payment changes anything; other events are acknowledged.
  if (opened.eventType !== 'TRANSACTION.SUCCESS' || t.trade_state !== 'SUCCESS') return { statusCode: 204 };
  if (!t.out_trade_no || !t.transaction_id || !Number.isSafeInteger(t.amount?.total)) return fail(400, '报文缺少字段');

  const outcome = await completePayment(deps, {
    channel: 'wechat',
    outTradeNo: t.out_trade_no,
    transactionId: t.transaction_id,
    amountFen: t.amount?.total as number,
    paidAt: parseGatewayTime(t.success_time) ?? new Date().toISOString(),
  });
  if (HANDLED.includes(outcome)) return { statusCode: 204 };
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
    log.warn('alipay notification refused', { reason: 'bad_signature' });
    return 'fail';
  }
  if (fields.app_id !== deps.alipay.appId || fields.seller_id !== deps.alipay.sellerId) {
    log.error('alipay notification for another app or seller', { outTradeNo: fields.out_trade_no });
    return 'fail';
  }
  if (fields.trade_status !== 'TRADE_SUCCESS' && fields.trade_status !== 'TRADE_FINISHED') return 'success';
  const amountFen = yuanToFen(fields.total_amount);
  if (!fields.out_trade_no || !fields.trade_no || amountFen === undefined) return 'fail';

  const outcome = await completePayment(deps, {
    channel: 'alipay',
    outTradeNo: fields.out_trade_no,
    transactionId: fields.trade_no,
    amountFen,
    paidAt: parseGatewayTime(fields.gmt_payment) ?? new Date().toISOString(),
  });
  return HANDLED.includes(outcome) ? 'success' : 'fail';
}
