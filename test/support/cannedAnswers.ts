/**
 * Gateway answers for adapter tests, signed with the sandbox's gateway keys exactly as the gateways
 * sign, for the states and errors the sandbox never produces. Shapes follow the sandbox's protocols
 * (scripts/sandbox/wechatPayApi.ts, alipayApi.ts), which follow the gateways' documentation.
 * - WeChat Pay v3: JSON body; `Wechatpay-Timestamp`, `-Nonce`, `-Serial` and `-Signature` = RSA-SHA256
 *   with the platform key over `timestamp\nnonce\nbody\n` (scripts/sandbox/signing.ts).
 * - Alipay: `{"<method>_response":{...},"sign":"..."}`, sign = RSA2 with Alipay's key over the exact
 *   text of the `_response` value.
 * `signing` bends a signature for negative tests: another key, an old timestamp, an unknown serial,
 * a signature over other bytes than those sent, or none at all.
 *
 * @example
 * server.queue(wechatJsonAnswer(creds.wechat, 200, wechatTransaction(creds.wechat, { outTradeNo, tradeState: 'REFUND' })));
 * server.queue(alipayAnswer(creds.alipay, 'alipay.trade.query', alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_FINISHED' })));
 */

import { fenToYuan } from '../../lib/domain/money';
import { toBeijingDateTime } from '../../lib/domain/time';
import type { SandboxCredentials } from '../../scripts/sandbox/credentials';
import { alipayBuyer, alipayTradeNo, wechatOpenid, wechatRefundId, wechatRequestId, wechatTransactionId } from '../../scripts/sandbox/randomIds';
import type { SandboxRefundStatus } from '../../scripts/sandbox/refund';
import { signRsaSha256, wechatSignatureHeaders } from '../../scripts/sandbox/signing';
import { wechatRefundResource } from '../../scripts/sandbox/wechatRefund';
import { wechatTransactionResource } from '../../scripts/sandbox/wechatTransaction';
import type { CannedAnswer } from './cannedGateway';

type WechatCredentials = SandboxCredentials['wechat'];
type AlipayCredentials = SandboxCredentials['alipay'];

// ---- WeChat Pay v3 ----

export interface WechatSigning {
  /** Seconds; default now. */
  timestamp?: number;
  serial?: string;
  signWithKeyPem?: string;
  /** Sign these bytes but send the answer's own: a body changed on the way. */
  signedBody?: string;
  /** No `Wechatpay-*` headers at all. */
  unsigned?: boolean;
}

/** A WeChat Pay v3 answer carrying `body` exactly, signed as WeChat signs it (an empty body too, as for a 204). */
export function wechatAnswer(creds: WechatCredentials, status: number, body: string, signing: WechatSigning = {}): CannedAnswer {
  const headers: Record<string, string> = { 'Request-ID': wechatRequestId() };
  if (!signing.unsigned) Object.assign(headers, wechatSignatureHeaders(creds, signing.signedBody ?? body, signing));
  if (body) headers['Content-Type'] = 'application/json; charset=utf-8';
  return { status, headers, body };
}

export function wechatJsonAnswer(creds: WechatCredentials, status: number, value: unknown, signing: WechatSigning = {}): CannedAnswer {
  return wechatAnswer(creds, status, JSON.stringify(value), signing);
}

/** WeChat's error answer: `{"code","message"}` under a 4xx or 5xx. */
export function wechatErrorAnswer(creds: WechatCredentials, status: number, code: string, message: string, signing: WechatSigning = {}): CannedAnswer {
  return wechatJsonAnswer(creds, status, { code, message }, signing);
}

/** Every trade_state of WeChat Pay v3's query, with the description WeChat gives it. */
export const WECHAT_TRADE_STATE_DESC = {
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  NOTPAY: '未支付',
  CLOSED: '已关闭',
  REVOKED: '已撤销（仅付款码支付会返回）',
  USERPAYING: '用户支付中（仅付款码支付会返回）',
  PAYERROR: '支付失败(其他原因，如银行返回失败)',
} as const;

/** States after which the money has arrived: WeChat shows the payer, transaction id and payment time. */
const WECHAT_MONEY_ARRIVED = ['SUCCESS', 'REFUND'];

/**
 * The query answer for one trade (appid, mchid, out_trade_no, transaction_id, trade_type, trade_state,
 * trade_state_desc, success_time, amount{total,payer_total,currency,payer_currency}), in WeChat's key
 * order; `tradeState` may be one WeChat never sends, for tests of states the adapter does not know.
 */
export function wechatTransaction(
  creds: WechatCredentials,
  trade: { outTradeNo: string; tradeState: string; amountFen?: number; paidAt?: string; transactionId?: string },
): Record<string, unknown> {
  const paid = WECHAT_MONEY_ARRIVED.includes(trade.tradeState);
  const resource = wechatTransactionResource(
    {
      channel: 'wechat',
      outTradeNo: trade.outTradeNo,
      amountFen: trade.amountFen ?? 1234,
      status: paid ? 'PAID' : 'UNPAID',
      description: '',
      createdAt: new Date().toISOString(),
      paidAt: trade.paidAt ?? new Date().toISOString(),
      transactionId: trade.transactionId ?? wechatTransactionId(),
      payer: { openid: wechatOpenid() },
      request: {},
    },
    creds,
  );
  const desc = (WECHAT_TRADE_STATE_DESC as Record<string, string>)[trade.tradeState] ?? trade.tradeState;
  return { ...resource, trade_state: trade.tradeState, trade_state_desc: desc };
}

// ---- Alipay ----

export interface AlipaySigning {
  signWithKeyPem?: string;
  /** Sign this node's text but send the answer's own: an answer changed on the way. */
  signedNode?: Record<string, unknown>;
  /** No `sign` at all. */
  unsigned?: boolean;
}

/** The `_response` key Alipay answers `method` under. */
export const alipayResponseKey = (method: string): string => `${method.replace(/\./g, '_')}_response`;

/**
 * An Alipay openapi answer, HTTP 200 as Alipay always gives: the node's JSON text and `sign` over
 * exactly that text. The envelope is built as text so the signed bytes are the ones sent.
 */
export function alipayAnswer(creds: AlipayCredentials, method: string, node: Record<string, unknown>, signing: AlipaySigning = {}): CannedAnswer {
  const nodeText = JSON.stringify(node);
  const key = alipayResponseKey(method);
  const sign = signRsaSha256(signing.signWithKeyPem ?? creds.alipay_private_key_pem, signing.signedNode ? JSON.stringify(signing.signedNode) : nodeText);
  const body = signing.unsigned ? `{"${key}":${nodeText}}` : `{"${key}":${nodeText},"sign":"${sign}"}`;
  return { status: 200, headers: { 'Content-Type': 'application/json;charset=utf-8' }, body };
}

const ALIPAY_MESSAGES: Record<string, string> = {
  '10000': 'Success',
  '20000': 'Service Currently Unavailable',
  '40001': 'Missing Required Arguments',
  '40002': 'Invalid Arguments',
  '40004': 'Business Failed',
};

/** A business or gateway error node: code, msg, sub_code, sub_msg (and what else Alipay adds). */
export function alipayErrorNode(
  code: string,
  subCode: string | undefined,
  subMsg: string | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const node: Record<string, unknown> = { code, msg: ALIPAY_MESSAGES[code] ?? 'Business Failed' };
  if (subCode !== undefined) node.sub_code = subCode;
  if (subMsg !== undefined) node.sub_msg = subMsg;
  return { ...node, ...extra };
}

/** States after which the buyer has paid: Alipay shows the buyer, the paid amounts and send_pay_date. */
const ALIPAY_MONEY_ARRIVED = ['TRADE_SUCCESS', 'TRADE_FINISHED'];

/**
 * The `alipay.trade.query` node for one trade, as Alipay answers it (keys in Alipay's alphabetical
 * order). `tradeStatus` may be one Alipay never sends.
 */
export function alipayTradeNode(trade: {
  outTradeNo: string;
  tradeStatus: string;
  /** Yuan as Alipay writes it; default the yuan of 1234 fen. */
  totalAmount?: string;
  tradeNo?: string;
  /** Default now. */
  paidAt?: Date;
}): Record<string, unknown> {
  const paid = ALIPAY_MONEY_ARRIVED.includes(trade.tradeStatus);
  const total = trade.totalAmount ?? fenToYuan(1234);
  const buyer = alipayBuyer();
  const node: Record<string, unknown> = { code: '10000', msg: 'Success' };
  if (paid) node.buyer_logon_id = buyer.buyerLogonId;
  node.buyer_pay_amount = paid ? total : '0.00';
  if (paid) {
    node.buyer_user_id = buyer.buyerId;
    node.buyer_user_type = 'PRIVATE';
  }
  node.invoice_amount = paid ? total : '0.00';
  node.out_trade_no = trade.outTradeNo;
  node.point_amount = '0.00';
  node.receipt_amount = paid ? total : '0.00';
  if (paid) node.send_pay_date = toBeijingDateTime(trade.paidAt ?? new Date());
  node.total_amount = total;
  node.trade_no = trade.tradeNo ?? alipayTradeNo();
  node.trade_status = trade.tradeStatus;
  return node;
}

/** Alipay's answer to a query for a trade it does not know (it echoes out_trade_no and zero amounts). */
export function alipayTradeNotExistNode(outTradeNo: string): Record<string, unknown> {
  return alipayErrorNode('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在', {
    buyer_pay_amount: '0.00',
    invoice_amount: '0.00',
    out_trade_no: outTradeNo,
    point_amount: '0.00',
    receipt_amount: '0.00',
  });
}

// ---- Refunds ----

/**
 * The refund object WeChat Pay v3 answers to a refund create and a refund query, as the sandbox builds it
 * (scripts/sandbox/wechatRefund.ts): `refundFen` of a payment of `totalFen`, `success_time` only once SUCCESS.
 * `status` may be one WeChat never sends.
 */
export function wechatRefund(refund: {
  outTradeNo: string;
  outRefundNo: string;
  status: string;
  /** Default 1234. */
  refundFen?: number;
  /** The payment's whole amount; default `refundFen`. */
  totalFen?: number;
  /** ISO 8601 instant; default now. */
  succeededAt?: string;
}): Record<string, unknown> {
  const now = new Date().toISOString();
  const refundFen = refund.refundFen ?? 1234;
  return wechatRefundResource(
    {
      channel: 'wechat',
      outTradeNo: refund.outTradeNo,
      outRefundNo: refund.outRefundNo,
      refundId: wechatRefundId(),
      amountFen: refundFen,
      status: refund.status as SandboxRefundStatus,
      createdAt: now,
      succeededAt: refund.succeededAt ?? now,
      request: {},
    },
    {
      channel: 'wechat',
      outTradeNo: refund.outTradeNo,
      amountFen: refund.totalFen ?? refundFen,
      status: 'PAID',
      description: '',
      createdAt: now,
      transactionId: wechatTransactionId(),
      request: {},
    },
  );
}

/**
 * The `alipay.trade.refund` node Alipay answers 10000 with (keys in Alipay's alphabetical order):
 * `fund_change` Y when this call moved the money, N when it did not (the same out_request_no again);
 * `refund_fee` is all that has been refunded of the trade so far, not this refund's amount.
 */
export function alipayRefundNode(refund: {
  outTradeNo: string;
  fundChange: string;
  /** Yuan; default the yuan of 1234 fen. */
  refundFee?: string;
  /** Default now. */
  refundedAt?: Date;
}): Record<string, unknown> {
  return {
    code: '10000',
    msg: 'Success',
    buyer_logon_id: alipayBuyer().buyerLogonId,
    fund_change: refund.fundChange,
    gmt_refund_pay: toBeijingDateTime(refund.refundedAt ?? new Date()),
    out_trade_no: refund.outTradeNo,
    refund_fee: refund.refundFee ?? fenToYuan(1234),
    trade_no: alipayTradeNo(),
  };
}

/**
 * The `alipay.trade.fastpay.refund.query` node for one out_request_no (asked with query_options
 * gmt_refund_pay). A refund Alipay did not carry out is 10000 all the same, without refund_status or amounts;
 * `refundStatus` may be one Alipay never sends.
 */
export function alipayRefundQueryNode(refund: {
  outTradeNo: string;
  outRequestNo: string;
  /** REFUND_SUCCESS, or undefined for a refund Alipay did not carry out. */
  refundStatus?: string;
  /** Yuan; default the yuan of 1234 fen. */
  refundAmount?: string;
  /** Yuan; default `refundAmount`. */
  totalAmount?: string;
  /** Default now. */
  refundedAt?: Date;
}): Record<string, unknown> {
  const node: Record<string, unknown> = { code: '10000', msg: 'Success' };
  const refundAmount = refund.refundAmount ?? fenToYuan(1234);
  if (refund.refundStatus !== undefined) node.gmt_refund_pay = toBeijingDateTime(refund.refundedAt ?? new Date());
  node.out_request_no = refund.outRequestNo;
  node.out_trade_no = refund.outTradeNo;
  if (refund.refundStatus !== undefined) {
    node.refund_amount = refundAmount;
    node.refund_status = refund.refundStatus;
    node.total_amount = refund.totalAmount ?? refundAmount;
  }
  node.trade_no = alipayTradeNo();
  return node;
}
