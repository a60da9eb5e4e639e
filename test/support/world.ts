import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { GatewayPayment } from '../../lib/domain/model';
import type { PaymentGateway } from '../../lib/gateways/paymentGateway';
import type { PayOrderDeps, PayOrderInput, PayOrderResult } from '../../lib/pay/payOrder';
import { payOrder } from '../../lib/pay/payOrder';
import { sampleAddress } from '../../scripts/local/fixtures';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { buildAlipayPaymentNotification, buildWechatPaymentNotification } from '../../scripts/sandbox/notifications';
import type { TestStack } from './stack';

let nextId = 1000;

/** A fresh user with `integral` points, an address, and one order per goods price (free shipping). */
export async function givenUser(stack: TestStack, integral: number, goods: string[] = ['88.00'], freight?: string) {
  const userId = (nextId += 10) * 10;
  const orderIds = goods.map(() => ++nextId);
  await stack.seed({
    users: [{ user_id: userId, integral, tokens: [{ token: `token-${userId}`, expires_at: '2099-01-01T00:00:00+08:00' }] }],
    addresses: [sampleAddress(userId, userId + 1)],
    orders: goods.map((price, i) => ({
      order_id: orderIds[i],
      user_id: userId,
      goods_name: '保温杯',
      goods_price: price,
      free_shipping: freight === undefined,
      status: 'unpaid' as const,
      freight_json:
        freight === undefined
          ? []
          : [
              { key: 1, name: '到付', fee: '0.00' },
              { key: 2, name: '商家自选', fee: freight },
            ],
    })),
  });
  return { userId, token: `token-${userId}`, addressId: userId + 1, orderId: orderIds[0], orderIds };
}

export type GivenUser = Awaited<ReturnType<typeof givenUser>>;

export function payDeps(stack: TestStack, over: Partial<PayOrderDeps> = {}): PayOrderDeps {
  return { store: stack.app.store, gateways: stack.app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30, ...over };
}

/** Pays `user`'s order with a method; cash and points as the server expects for an 88.00 order unless given. */
export function pay(stack: TestStack, user: GivenUser, over: Partial<PayOrderInput> = {}, deps = payDeps(stack)): Promise<PayOrderResult> {
  return payOrder(deps, user.userId, {
    orderId: user.orderId,
    addressId: user.addressId,
    method: 1,
    priceFen: 8800,
    points: 0,
    freightMode: 1,
    freightKey: 0,
    ...over,
  });
}

/** WeChat as it is when the buyer pays between our query and our close: each trade is paid just before it is closed, so the close is refused as paid. */
export function paidWhileClosing(stack: TestStack): PaymentGateway {
  const wechat = stack.app.gateways.wechat;
  return {
    ...wechat,
    closeTrade: async (outTradeNo) => {
      stack.gateway.pay(outTradeNo);
      return wechat.closeTrade(outTradeNo);
    },
  };
}

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

/** The deployed notify handlers, loaded with the stack's environment. */
export async function notifyHandlers(stack: TestStack): Promise<{ wechat: Handler; alipay: Handler }> {
  Object.assign(process.env, stack.env);
  const wechat = ((await import('../../functions/notifyWechat/handler')) as unknown as { handler: Handler }).handler;
  const alipay = ((await import('../../functions/notifyAlipay/handler')) as unknown as { handler: Handler }).handler;
  return { wechat, alipay };
}

/** The transaction WeChat reports for a paid trade of the sandbox, with fields overridable for bad cases. */
export function wechatTransaction(stack: TestStack, outTradeNo: string, over: Record<string, unknown> = {}) {
  const trade = stack.gateway.trade(outTradeNo);
  const { appid, mchid } = stack.credentials.wechat;
  return {
    appid,
    mchid,
    out_trade_no: outTradeNo,
    transaction_id: trade?.transactionId ?? `4200${Date.now()}`,
    trade_type: 'APP',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    success_time: '2026-11-28T20:00:00+08:00',
    payer: { openid: 'o-sandbox' },
    amount: { total: trade?.amountFen ?? 0, payer_total: trade?.amountFen ?? 0, currency: 'CNY', payer_currency: 'CNY' },
    ...over,
  };
}

export async function sendWechat(handler: Handler, notification: { headers: Record<string, string>; body: string }) {
  const response = await handler(httpEvent({ path: '/notify/wechat', headers: notification.headers, body: notification.body }), lambdaContext);
  return { statusCode: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

export function signedWechat(stack: TestStack, transaction: object, opts?: Parameters<typeof buildWechatPaymentNotification>[2]) {
  return buildWechatPaymentNotification(stack.credentials.wechat, transaction, opts);
}

/** The fields Alipay posts for a paid trade of `amountYuan`. */
export function alipayFields(outTradeNo: string, amountYuan: string, over: Record<string, string> = {}) {
  return {
    out_trade_no: outTradeNo,
    trade_no: `2026${outTradeNo.replace(/\D/g, '').slice(-16)}`,
    trade_status: 'TRADE_SUCCESS',
    total_amount: amountYuan,
    receipt_amount: amountYuan,
    buyer_id: '2088000000000001',
    gmt_payment: '2026-11-28 20:00:00',
    subject: '保温杯',
    ...over,
  };
}

export async function sendAlipay(handler: Handler, body: string) {
  const response = await handler(httpEvent({ path: '/notify/alipay', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }), lambdaContext);
  return response.body as string;
}

export function signedAlipay(stack: TestStack, fields: Record<string, string>) {
  return buildAlipayPaymentNotification(stack.credentials.alipay, fields).body;
}

/** A payment of `outTradeNo` as its gateway reports it, under transaction id `t-<outTradeNo>`, paid now. */
export function gatewayPayment(outTradeNo: string, channel: GatewayPayment['channel'] = 'wechat', amountFen = 8800): GatewayPayment {
  return { channel, outTradeNo, transactionId: `t-${outTradeNo}`, amountFen, paidAt: new Date().toISOString() };
}

/** The stack's store with some methods replaced; the others are the real store's. */
export function storeWith(stack: TestStack, over: Partial<TestStack['app']['store']>): TestStack['app']['store'] {
  return Object.assign(Object.create(stack.app.store), over);
}
