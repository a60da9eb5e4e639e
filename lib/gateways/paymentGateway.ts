import { PaynowError } from '../domain/errors';
import type { Channel, GatewayPayment, GatewayRefundReport } from '../domain/model';
import type { Fen } from '../domain/money';

/** The signed object the WeChat SDK in the app needs to open the pay sheet. */
export interface WechatPayParam {
  appid: string;
  partnerid: string;
  prepayid: string;
  package: 'Sign=WXPay';
  noncestr: string;
  timestamp: string;
  sign: string;
}

/** WeChat's object, or Alipay's signed APP order string. */
export type PayParam = WechatPayParam | string;

export interface PrepayRequest {
  outTradeNo: string;
  amountFen: Fen;
  subject: string;
  /** Sent to the gateway too, so it refuses payment after the attempt's hold has been released. */
  expiresAt: Date;
}

/**
 * What the gateway says about one out_trade_no. `windowClosed`: paid, and too old to be refunded at all
 * (Alipay's TRADE_FINISHED, past the refund period of the merchant's contract).
 */
export type TradeState =
  | { state: 'paid'; transactionId: string; amountFen: Fen; paidAt: string; windowClosed?: true }
  | { state: 'unpaid' | 'closed' | 'not_found' };

/** A refund as the gateway is asked for it: always the same number and amounts for one refund. */
export interface RefundRequest {
  outTradeNo: string;
  outRefundNo: string;
  refundFen: Fen;
  /** The payment's whole amount. */
  totalFen: Fen;
  reason: string;
}

/**
 * What the gateway says about one refund number. failed is final for that number (the gateway will
 * never pay it out); `windowClosed` says the payment is too old to be refunded at all.
 * not_found: the gateway never received it (or, for Alipay, did not carry it out): send it again.
 */
export type RefundState =
  | { state: 'succeeded'; refundedAt?: string }
  | { state: 'processing' }
  | { state: 'failed'; reason: string; windowClosed?: boolean }
  /**
   * WeChat ABNORMAL: taken from the merchant's balance, but the payer's account cannot receive it (a
   * closed bank card or account). Not final: the money waits at WeChat until a person sends it on
   * (发起异常退款, to another card of the payer or to the merchant's), and then the same refund succeeds.
   */
  | { state: 'abnormal' }
  | { state: 'not_found' };

/**
 * What the refund call answers: a refund state (never not_found), or one of two answers that say nothing final by
 * themselves, for the caller to ask the one query that does (a call of its own: the sweeping's cap and the
 * metrics count every call).
 * - unconfirmed: taken, but this call says it moved no money (Alipay's fund_change N, as for a number
 *   refunded already): the refund's query tells whether it was carried out;
 * - refused_for_trade_state: the trade cannot be refunded in its present state, without saying which
 *   (Alipay's ACQ.TRADE_STATUS_ERROR, answered for a finished trade and a closed one too): the trade's
 *   query tells.
 */
export type RefundAnswer = RefundState | { state: 'unconfirmed' } | { state: 'refused_for_trade_state'; reason: string };

/**
 * One adapter per gateway. Adapters translate the gateway's replies into these few outcomes and
 * throw `GatewayError` for anything they cannot vouch for (network, 5xx, bad signature).
 */
export interface PaymentGateway {
  readonly channel: Channel;
  /**
   * Resolves once a call would go out at once (the keys read, the adapter loaded): a caller that paces
   * its calls waits for this before it takes a call's slot. Absent where there is nothing to wait for.
   */
  ready?(): Promise<void>;
  /** @throws TradeAlreadyPaid, TradeClosed */
  createPayParam(request: PrepayRequest): Promise<PayParam>;
  /**
   * The pay_param again for a prepay the gateway already made and that is still valid, signed locally:
   * no gateway call (WeChat: its prepay_id lasts 2 hours). Absent where a pay_param needs no prepay.
   */
  resumePayParam?(prepayId: string): Promise<PayParam>;
  queryTrade(outTradeNo: string): Promise<TradeState>;
  /**
   * Closes an unpaid trade; a trade the gateway never saw counts as closed. One call, no more (the
   * sweeping's cap counts calls): a refusal that does not say why (Alipay's TRADE_STATUS_ERROR, for a
   * paid trade and for one closed already) is a TradeCloseRefused, and the caller asks the query.
   * @throws TradeAlreadyPaid when the gateway says the trade is paid
   */
  closeTrade(outTradeNo: string): Promise<void>;
  /** Asks for a refund, or for the same one again (same number: the gateway refunds it once). One call, no more: see RefundAnswer. */
  refund(request: RefundRequest): Promise<RefundAnswer>;
  queryRefund(request: RefundRequest): Promise<RefundState>;
}

/** A notification as the gateway sent it: the exact body bytes matter for its signature. */
export interface GatewayRequest {
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  rawBody: string;
}

/**
 * Why a notification was refused before any payment was looked up (a closed set: a metric dimension).
 * unexpected_trade: genuine and ours, but not a trade paynow makes (another trade type, another currency).
 */
export type NotificationRefusal =
  | 'bad_signature'
  | 'unknown_serial'
  | 'stale'
  | 'malformed'
  | 'undecryptable'
  | 'merchant_mismatch'
  | 'missing_fields'
  | 'unexpected_trade';

/** A notification once its channel's adapter has verified, decrypted, decoded and checked it. */
export type OpenedNotification =
  /** A payment the gateway vouches for, addressed to this merchant and app. */
  | { kind: 'payment'; payment: GatewayPayment; outTradeNo: string }
  /** A refund's final result, addressed to this merchant. */
  | { kind: 'refund'; report: GatewayRefundReport; outTradeNo: string }
  /** Genuine and ours, but it reports nothing to record (a trade not paid, or closed). */
  | { kind: 'ignored'; outTradeNo?: string }
  | { kind: 'refused'; reason: NotificationRefusal; outTradeNo?: string };

/** What became of a notification; its adapter turns it into the answer its gateway expects. */
export type NotificationVerdict =
  /** Recorded, or nothing to record: the gateway must not send it again. */
  | { kind: 'handled' }
  | { kind: 'refused'; reason: NotificationRefusal | 'unknown_attempt' | 'unknown_refund' | 'amount_mismatch' }
  /** A fault of ours or a decision that has to wait: the gateway should send it again. */
  | { kind: 'retry' };

export interface NotificationAnswer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The notification half of a gateway (one adapter per channel): `open` verifies and normalises what
 * the gateway sent, `answer` renders the acknowledgement the gateway expects. One use case
 * (lib/pay/handleNotification.ts) serves every channel in between.
 */
export interface NotificationChannel {
  readonly channel: Channel;
  open(request: GatewayRequest): Promise<OpenedNotification>;
  answer(verdict: NotificationVerdict): NotificationAnswer;
}

/** The gateway could not be reached or answered something unexpected: nothing is known to have happened. */
export class GatewayError extends PaynowError {
  static {
    GatewayError.prototype.name = 'GatewayError';
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A close the gateway refused without saying why: Alipay's ACQ.TRADE_STATUS_ERROR, for a paid trade and
 * for one closed already (at its time_expire: most abandoned Alipay checkouts). An answer, not a fault:
 * the caller asks the query which. A GatewayError, so that a caller that does not know it asks too.
 */
export class TradeCloseRefused extends GatewayError {
  static {
    TradeCloseRefused.prototype.name = 'TradeCloseRefused';
  }
}

/** The gateway says this trade is already paid, so it cannot be closed or paid again. */
export class TradeAlreadyPaid extends PaynowError {
  static {
    TradeAlreadyPaid.prototype.name = 'TradeAlreadyPaid';
  }

  constructor(
    readonly outTradeNo: string,
    options?: ErrorOptions,
  ) {
    super(`trade ${outTradeNo} is already paid`, options);
  }
}

/** The gateway closed this trade: it can no longer be paid, nor prepaid again. */
export class TradeClosed extends PaynowError {
  static {
    TradeClosed.prototype.name = 'TradeClosed';
  }

  constructor(
    readonly outTradeNo: string,
    options?: ErrorOptions,
  ) {
    super(`trade ${outTradeNo} is closed`, options);
  }
}
