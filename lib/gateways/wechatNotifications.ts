import { type Clock, parseGatewayTime } from '../domain/time';
import type { GatewayRequest, NotificationAnswer, NotificationChannel, NotificationVerdict, OpenedNotification } from './paymentGateway';
import { decryptWechatNotification, wechatNotificationAnswer } from './wechatNotificationEnvelope';
import { openRefundResource, type WechatRefundResource } from './wechatRefundNotifications';
import type { WechatSignatureVerifier } from './wechatSignature';

/** The decrypted `resource` of a WeChat Pay v3 payment notification (the fields we use). */
export interface WechatTransaction {
  appid?: string;
  mchid?: string;
  out_trade_no?: string;
  transaction_id?: string;
  trade_state?: string;
  success_time?: string;
  trade_type?: string;
  amount?: { total?: number; payer_total?: number; currency?: string };
}

/** paynow opens APP trades in CNY only: a payment of any other kind is not one of its attempts' payments. */
export function isPaynowTrade(t: { trade_type?: string; amount?: { currency?: string } }): boolean {
  return t.trade_type === 'APP' && t.amount?.currency === 'CNY';
}

export interface WechatNotificationsOptions {
  appid: string;
  mchid: string;
  apiV3Key: string;
  verifier: WechatSignatureVerifier;
  now: Clock;
}

/**
 * WeChat Pay v3 payment notifications (`POST /notify/wechat`): verified and decrypted with
 * node:crypto, then they must name our merchant and app. Only `TRANSACTION.SUCCESS` with trade_state
 * SUCCESS is a payment; REFUND.* events are refunds' results; other events are acknowledged and change nothing.
 */
export class WechatNotifications implements NotificationChannel {
  readonly channel = 'wechat' as const;

  constructor(private readonly options: WechatNotificationsOptions) {}

  async open({ headers, rawBody }: GatewayRequest): Promise<OpenedNotification> {
    const { appid, mchid, apiV3Key, verifier, now } = this.options;
    const opened = decryptWechatNotification<WechatTransaction>(headers, rawBody, verifier, apiV3Key, now().getTime());
    if (!opened.ok) return { kind: 'refused', reason: opened.reason };
    // A refund's notification sent here (the merchant platform's default refund notify URL, say) is
    // recorded as if it came to /notify/wechat/refund: refund resources name no appid.
    if (opened.eventType.startsWith('REFUND.')) return openRefundResource(opened.eventType, opened.resource as WechatRefundResource, mchid);
    const t = opened.resource;
    if (t.mchid !== mchid || t.appid !== appid) return { kind: 'refused', reason: 'merchant_mismatch', outTradeNo: t.out_trade_no };
    if (opened.eventType !== 'TRANSACTION.SUCCESS' || t.trade_state !== 'SUCCESS') return { kind: 'ignored', outTradeNo: t.out_trade_no };
    const amountFen = t.amount?.total;
    if (!t.out_trade_no || !t.transaction_id || amountFen === undefined || !Number.isSafeInteger(amountFen)) {
      return { kind: 'refused', reason: 'missing_fields', outTradeNo: t.out_trade_no };
    }
    if (!isPaynowTrade(t)) return { kind: 'refused', reason: 'unexpected_trade', outTradeNo: t.out_trade_no };
    return {
      kind: 'payment',
      outTradeNo: t.out_trade_no,
      payment: {
        channel: 'wechat',
        outTradeNo: t.out_trade_no,
        transactionId: t.transaction_id,
        amountFen,
        paidAt: parseGatewayTime(t.success_time) ?? now().toISOString(),
      },
    };
  }

  /** 204 when handled; anything else, with `{"code":"FAIL"}`, makes WeChat send it again. */
  answer(verdict: NotificationVerdict): NotificationAnswer {
    return wechatNotificationAnswer(verdict);
  }
}
