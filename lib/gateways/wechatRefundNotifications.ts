import type { GatewayRefundReport } from '../domain/model';
import { type Clock, parseGatewayTime } from '../domain/time';
import type { GatewayRequest, NotificationAnswer, NotificationChannel, NotificationVerdict, OpenedNotification } from './paymentGateway';
import { decryptWechatNotification, wechatNotificationAnswer } from './wechatNotificationEnvelope';
import type { WechatSignatureVerifier } from './wechatSignature';

/** The decrypted `resource` of a WeChat Pay v3 refund notification (the fields we use; it names no appid). */
export interface WechatRefundResource {
  mchid?: string;
  out_trade_no?: string;
  out_refund_no?: string;
  refund_status?: string;
  success_time?: string;
  amount?: { total?: number; refund?: number };
}

export interface WechatRefundNotificationsOptions {
  mchid: string;
  apiV3Key: string;
  verifier: WechatSignatureVerifier;
  now: Clock;
}

const REPORTED_EVENTS = new Map<string, GatewayRefundReport['state']>([
  ['REFUND.SUCCESS', 'succeeded'],
  ['REFUND.ABNORMAL', 'abnormal'],
  ['REFUND.CLOSED', 'failed'],
]);

/**
 * WeChat Pay v3 refund notifications (`POST /notify/wechat/refund`, the notify_url of every refund):
 * the same signature, freshness and AES-GCM checks as payment notifications, then the resource must
 * name our merchant and carry the refund's numbers and amount, which the use case compares with the
 * refund it recorded. REFUND.SUCCESS is a success and REFUND.CLOSED a final failure; REFUND.ABNORMAL is not
 * final (the payer's account cannot receive it: a person sends it on, and then it succeeds).
 */
export class WechatRefundNotifications implements NotificationChannel {
  readonly channel = 'wechat' as const;

  constructor(private readonly options: WechatRefundNotificationsOptions) {}

  async open({ headers, rawBody }: GatewayRequest): Promise<OpenedNotification> {
    const { mchid, apiV3Key, verifier, now } = this.options;
    const opened = decryptWechatNotification<WechatRefundResource>(headers, rawBody, verifier, apiV3Key, now().getTime());
    if (!opened.ok) return { kind: 'refused', reason: opened.reason };
    return openRefundResource(opened.eventType, opened.resource, mchid);
  }

  answer(verdict: NotificationVerdict): NotificationAnswer {
    return wechatNotificationAnswer(verdict);
  }
}

/** The refund a verified, decrypted REFUND.* resource reports, once it names our merchant and carries its numbers and amount. */
export function openRefundResource(eventType: string, r: WechatRefundResource, mchid: string): OpenedNotification {
  if (r.mchid !== mchid) return { kind: 'refused', reason: 'merchant_mismatch', outTradeNo: r.out_trade_no };
  const state = REPORTED_EVENTS.get(eventType);
  if (!state) return { kind: 'ignored', outTradeNo: r.out_trade_no };
  const refundFen = r.amount?.refund;
  // The event and the resource's own status must agree: SUCCESS only with REFUND.SUCCESS, ABNORMAL only with REFUND.ABNORMAL.
  const statusAgrees = (r.refund_status === 'SUCCESS') === (state === 'succeeded') && (r.refund_status === 'ABNORMAL') === (state === 'abnormal');
  if (!r.out_trade_no || !r.out_refund_no || refundFen === undefined || !Number.isSafeInteger(refundFen) || !statusAgrees) {
    return { kind: 'refused', reason: 'missing_fields', outTradeNo: r.out_trade_no };
  }
  return {
    kind: 'refund',
    outTradeNo: r.out_trade_no,
    report: {
      channel: 'wechat',
      outRefundNo: r.out_refund_no,
      outTradeNo: r.out_trade_no,
      refundFen,
      state,
      refundedAt: state === 'succeeded' ? parseGatewayTime(r.success_time) : undefined,
      failureReason: state === 'failed' ? (r.refund_status ?? eventType) : undefined,
    },
  };
}
