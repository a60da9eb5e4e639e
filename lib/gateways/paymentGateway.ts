import type { Fen } from '../domain/money';
import type { Channel } from '../domain/model';

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

/** What the gateway says about one out_trade_no. */
export type TradeState =
  | { state: 'paid'; transactionId: string; amountFen: Fen; paidAt: string }
  | { state: 'unpaid' | 'closed' | 'not_found' };

/**
 * One adapter per gateway. Adapters translate the gateway's replies into these few outcomes and
 * throw `GatewayError` for anything they cannot vouch for (network, 5xx, bad signature).
 */
export interface PaymentGateway {
  readonly channel: Channel;
  /** @throws TradeAlreadyPaid, TradeClosed */
  createPayParam(request: PrepayRequest): Promise<PayParam>;
  queryTrade(outTradeNo: string): Promise<TradeState>;
  /** Closes an unpaid trade; a trade the gateway never saw counts as closed. @throws TradeAlreadyPaid */
  closeTrade(outTradeNo: string): Promise<void>;
}

/** The gateway could not be reached or answered something unexpected: nothing is known to have happened. */
export class GatewayError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

/** The gateway says this trade is already paid, so it cannot be closed or paid again. */
export class TradeAlreadyPaid extends Error {
  constructor(readonly outTradeNo: string) {
    super(`trade ${outTradeNo} is already paid`);
    this.name = 'TradeAlreadyPaid';
  }
}

/** The gateway closed this trade: it can no longer be paid, nor prepaid again. */
export class TradeClosed extends Error {
  constructor(readonly outTradeNo: string) {
    super(`trade ${outTradeNo} is closed`);
    this.name = 'TradeClosed';
  }
}
