import { yuanToFen } from '../domain/money';
import { type Clock, parseGatewayTime } from '../domain/time';
import type { GatewayRequest, NotificationAnswer, NotificationChannel, NotificationVerdict, OpenedNotification } from './paymentGateway';

export interface AlipayNotificationsOptions {
  appId: string;
  /** The merchant's Alipay user id (2088…): a notification must name it. */
  sellerId: string;
  /** Alipay's RSA2 signature over the decoded fields (alipay-sdk, loaded on first use). */
  verify(fields: Record<string, string>): Promise<boolean>;
  now: Clock;
}

const TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8' };
const PAID_STATUSES = ['TRADE_SUCCESS', 'TRADE_FINISHED'];
/** Fields only the notification Alipay sends after a refund carries (to the payment's notify_url). */
const REFUND_FIELDS = ['refund_fee', 'gmt_refund', 'out_biz_no'];

/** An Alipay notification field's name. */
const FIELD_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Alipay asynchronous notifications (`POST /notify/alipay`, a form): verified, then they must name
 * our app and seller. Only TRADE_SUCCESS and TRADE_FINISHED are payments; other statuses are
 * acknowledged and change nothing. So is the notification Alipay sends after a refund (TRADE_CLOSED
 * after a full refund, or a paid status carrying refund fields): it is no new payment, and the
 * refund's result comes from the refund call and its query.
 */
export class AlipayNotifications implements NotificationChannel {
  readonly channel = 'alipay' as const;

  constructor(private readonly options: AlipayNotificationsOptions) {}

  async open({ rawBody }: GatewayRequest): Promise<OpenedNotification> {
    const { appId, sellerId, verify, now } = this.options;
    // URLSearchParams decodes `+` and %XX once, which is what the signature is computed over.
    const pairs = [...new URLSearchParams(rawBody)];
    // The signed text (`name=value` joined by `&`) cannot tell `a=1&b=2` from one field named `a=1&b`:
    // a signed body regrouped so could hide a field the checks below look for (auth_app_id). Alipay's
    // names are lower-case words, each once.
    const names = pairs.map(([name]) => name);
    if (names.some((name) => !FIELD_NAME.test(name)) || new Set(names).size !== names.length) return { kind: 'refused', reason: 'malformed' };
    const fields = Object.fromEntries(pairs);
    // alipay-sdk picks the algorithm from the message's own sign_type: only RSA2 (SHA-256) is ours, never RSA (SHA-1).
    if (fields.sign_type !== 'RSA2' || !(await verify(fields))) return { kind: 'refused', reason: 'bad_signature' };
    const outTradeNo = fields.out_trade_no;
    // auth_app_id is the app the merchant authorised: ours, when Alipay sends it (it does for a self-built app).
    const foreignApp = fields.auth_app_id !== undefined && fields.auth_app_id !== appId;
    if (fields.app_id !== appId || foreignApp || fields.seller_id !== sellerId) return { kind: 'refused', reason: 'merchant_mismatch', outTradeNo };
    if (!PAID_STATUSES.includes(fields.trade_status) || REFUND_FIELDS.some((field) => fields[field])) return { kind: 'ignored', outTradeNo };
    const amountFen = yuanToFen(fields.total_amount);
    if (!outTradeNo || !fields.trade_no || amountFen === undefined) return { kind: 'refused', reason: 'missing_fields', outTradeNo };
    return {
      kind: 'payment',
      outTradeNo,
      payment: {
        channel: 'alipay',
        outTradeNo,
        transactionId: fields.trade_no,
        amountFen,
        paidAt: parseGatewayTime(fields.gmt_payment) ?? now().toISOString(),
      },
    };
  }

  /** `success` when handled; `fail` (any other answer, too) makes Alipay send it again. */
  answer(verdict: NotificationVerdict): NotificationAnswer {
    return alipayNotificationAnswer(verdict);
  }
}

/** The answer Alipay expects; needs no keys, so it can be given even when the keys could not be read. */
export function alipayNotificationAnswer(verdict: NotificationVerdict): NotificationAnswer {
  return { statusCode: 200, headers: TEXT_HEADERS, body: verdict.kind === 'handled' ? 'success' : 'fail' };
}
