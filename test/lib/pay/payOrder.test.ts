import { createPublicKey, createVerify } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type ErrorCode, PayError } from '../../../lib/domain/errors';
import { GatewayError, type PaymentGateway, type WechatPayParam } from '../../../lib/gateways/paymentGateway';
import { logger } from '../../../lib/log';
import { beforeEachCall, tradeOfCall } from '../../../lib/pay/gatewayRateLimit';
import type { PayOrderInput } from '../../../lib/pay/payOrder';
import { type PayOrderDeps, type PayOrderResult, payOrder } from '../../../lib/pay/payOrder';
import { ENTITY, keys } from '../../../lib/store/keys';
import { type PayContext, type PayContextRead, WriteConflict } from '../../../lib/store/payStore';
import { sampleAddress } from '../../../scripts/local/fixtures';
import { captureOutput } from '../../support/logs';
import { rejection } from '../../support/rejection';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { givenUser as givenUserOf, paidWhileClosing, storeWith } from '../../support/world';

let stack: TestStack;
let state: ReturnType<typeof tableState>;
let deps: PayOrderDeps;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  deps = { store: stack.app.store, gateways: stack.app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30 };
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

const givenUser = (integral: number, goods?: string[], freight?: string) => givenUserOf(stack, integral, goods, freight);

function input(orderId: number, addressId: number, over: Partial<PayOrderInput>): PayOrderInput {
  return { orderId, addressId, method: 1, priceFen: 8800, points: 0, freightMode: 1, freightKey: 0, ...over };
}

async function refusal(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PayError) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

function wechatParam(result: PayOrderResult): WechatPayParam {
  if (result.outcome !== 'pay_param' || typeof result.payParam === 'string') throw new Error('expected a WeChat pay_param');
  return result.payParam;
}

function alipayParam(result: PayOrderResult): URLSearchParams {
  if (result.outcome !== 'pay_param' || typeof result.payParam !== 'string') throw new Error('expected an Alipay order string');
  return new URLSearchParams(result.payParam);
}

describe('a first pay', () => {
  it('WeChat: a signed pay_param for the sandbox prepay id; the order is paying; no points move', async () => {
    const u = await givenUser(500, ['88.00'], '12.00');
    const result = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { priceFen: 10000, freightMode: 2, freightKey: 2 }));
    const param = wechatParam(result);

    const trade = stack.gateway.trade(result.outTradeNo);
    expect(trade).toMatchObject({ channel: 'wechat', amountFen: 10000, status: 'UNPAID', prepayId: param.prepayid });
    expect(param).toMatchObject({ appid: stack.credentials.wechat.appid, partnerid: stack.credentials.wechat.mchid, package: 'Sign=WXPay' });
    const signed = `${param.appid}\n${param.timestamp}\n${param.noncestr}\n${param.prepayid}\n`;
    const merchantKey = createPublicKey(stack.credentials.wechat.merchant_cert_pem);
    expect(createVerify('RSA-SHA256').update(signed).verify(merchantKey, param.sign, 'base64')).toBe(true);

    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: result.outTradeNo, cash_fen: 10000, points: 0 } });
    expect(await state.attempt(result.outTradeNo)).toMatchObject({ status: 'open', method: 1, cash_fen: 10000, points: 0, address: { name: '张三' } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 500, integral_held: 0, integral_spent: 0 });
    // the expiry sent to WeChat is the attempt's own, in Beijing time
    const attempt = await state.attempt(result.outTradeNo);
    expect(Date.parse(trade!.timeExpire!)).toBe(Date.parse(attempt!.expires_at as string));
    expect(trade!.timeExpire).toMatch(/\+08:00$/);
  });

  it('Alipay: a signed APP order string with the server total in yuan and Beijing timestamps', async () => {
    const u = await givenUser(0, ['199.00']);
    const result = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 2, priceFen: 19900 }));
    const params = alipayParam(result);
    const biz = JSON.parse(params.get('biz_content')!);
    expect(biz).toMatchObject({ out_trade_no: result.outTradeNo, total_amount: '199.00', product_code: 'QUICK_MSECURITY_PAY' });
    expect(params.get('method')).toBe('alipay.trade.app.pay');
    expect(params.get('app_id')).toBe(stack.credentials.alipay.app_id);
    // Beijing wall time whatever TZ the process runs in
    const beijingNow = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 16).replace('T', ' ');
    expect(params.get('timestamp')!.slice(0, 16)).toBe(beijingNow);

    const signed = [...params.entries()]
      .filter(([k]) => k !== 'sign')
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    expect(createVerify('RSA-SHA256').update(signed).verify(stack.credentials.alipay.app_public_key_pem, params.get('sign')!, 'base64')).toBe(true);
    // the sandbox accepts it as the Alipay app would
    expect(stack.gateway.registerAlipayOrder(String((result as { payParam: string }).payParam))).toMatchObject({ amountFen: 19900 });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying' });
  });

  it.each([
    [4, 'wechat'],
    [5, 'alipay'],
  ] as const)('method %p holds the points, charges the rest and writes one hold ledger entry', async (method, channel) => {
    const u = await givenUser(5000, ['59.90'], '8.00');
    const result = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method, points: 3000, priceFen: 2990, freightMode: 2, freightKey: 1 }));
    expect(result.outcome).toBe('pay_param');
    if (channel === 'wechat') expect(stack.gateway.trade(result.outTradeNo)?.amountFen).toBe(2990);
    else expect(JSON.parse(alipayParam(result).get('biz_content')!).total_amount).toBe('29.90');
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 2000, integral_held: 3000, integral_spent: 0 });
    expect(await state.ledger(u.userId)).toEqual([expect.objectContaining({ kind: 'hold', points: 3000, out_trade_no: result.outTradeNo })]);
  });

  it('points only: paid at once, points spent, nothing at a gateway', async () => {
    const u = await givenUser(20000, ['45.00']);
    const result = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 3, points: 4500, priceFen: 0 }));
    expect(result.outcome).toBe('paid');
    expect(stack.gateway.trade(result.outTradeNo)).toBeUndefined();
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paid', paid_attempt: result.outTradeNo });
    expect(await state.order(u.orderId)).not.toHaveProperty('open_attempt');
    expect(await state.attempt(result.outTradeNo)).toMatchObject({ status: 'paid', points: 4500, cash_fen: 0 });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 15500, integral_held: 0, integral_spent: 4500 });
    expect(await state.ledger(u.userId)).toEqual([expect.objectContaining({ kind: 'spend', points: 4500 })]);
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 3, points: 4500, priceFen: 0 })))).toBe('ORDER_ALREADY_PAID');
  });
});

describe('a merchant switching from WeChat platform certificates to the WeChat Pay public key', () => {
  it('is answered in the public key its requests name: a secret holding only that key pays and queries', async () => {
    // WeChat signs an answer with the platform certificate when the request names no key.
    stack.gateway.wechatCertificateSwitch('5157F09EFDC096DE15EBE81A47057A72');
    try {
      const u = await givenUser(0);
      const result = await payOrder(deps, u.userId, input(u.orderId, u.addressId, {}));
      expect(wechatParam(result).prepayid).toBe(stack.gateway.trade(result.outTradeNo)?.prepayId);
      expect(await stack.app.gateways.wechat.queryTrade(result.outTradeNo)).toEqual({ state: 'unpaid' });
    } finally {
      stack.gateway.wechatCertificateSwitch(undefined);
    }
  });
});

describe('refusals change nothing', () => {
  it.each<[string, Partial<PayOrderInput>, ErrorCode]>([
    ['a price one fen low', { priceFen: 8799 }, 'PRICE_MISMATCH'],
    ['points on a cash-only method', { points: 1 }, 'INTEGRAL_MISMATCH'],
    ['points-only without enough points', { method: 3, points: 8800, priceFen: 0 }, 'INTEGRAL_NOT_ENOUGH'],
    ['more points than available', { method: 4, points: 501, priceFen: 8299 }, 'INTEGRAL_INVALID'],
    ['freight mode 2 on a free-shipping order', { freightMode: 2, freightKey: 2 }, 'FREIGHT_MODE_INVALID'],
  ])('%s', async (_title, over, code) => {
    const u = await givenUser(500);
    const before = await state.snapshot();
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, over)))).toBe(code);
    expect(await state.snapshot()).toEqual(before);
  });

  it("another user's order is reported as missing; another user's address too", async () => {
    const owner = await givenUser(0);
    const other = await givenUser(0);
    const before = await state.snapshot();
    expect(await refusal(payOrder(deps, other.userId, input(owner.orderId, other.addressId, {})))).toBe('ORDER_NOT_FOUND');
    expect(await refusal(payOrder(deps, owner.userId, input(owner.orderId, other.addressId, {})))).toBe('ADDRESS_NOT_FOUND');
    expect(await refusal(payOrder(deps, owner.userId, input(999_999, owner.addressId, {})))).toBe('ORDER_NOT_FOUND');
    expect(await state.snapshot()).toEqual(before);
  });

  it('enough points forbid a gateway method', async () => {
    const u = await givenUser(8800);
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, {})))).toBe('PAY_METHOD_NOT_ALLOWED');
  });
});

describe('paying again while an attempt is open', () => {
  it('with the same method and points but the merchant courier instead of collect-on-delivery, opens a new attempt that charges the freight', async () => {
    const u = await givenUser(1000, ['88.00'], '12.00');
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000, freightMode: 2, freightKey: 1 }));
    const second = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 9200, freightMode: 2, freightKey: 2 }));
    expect(second.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open', cash_fen: 9200, points: 800 });
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(stack.gateway.trade(second.outTradeNo)).toMatchObject({ amountFen: 9200 });
  });

  it.each([
    ['the same points, less cash (a point now worth 2 fen)', { points: 800, priceFen: 7200 }],
    ['the same cash, fewer points (a point now worth 2 fen)', { points: 400, priceFen: 8000 }],
  ])('after a deploy changed what a point is worth, %s is another choice: a new attempt at the new amounts', async (_what, amounts) => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const second = await payOrder({ ...deps, fenPerPoint: 2 }, u.userId, input(u.orderId, u.addressId, { method: 4, ...amounts }));
    expect(second.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open', cash_fen: amounts.priceFen, points: amounts.points });
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 1000 - amounts.points, integral_held: amounts.points });
  });

  it("the merchant's courier at no fee instead of collect-on-delivery (the same amounts) is another choice: a new attempt, each keeping its freight choice", async () => {
    const u = await givenUser(1000, ['88.00'], '0.00');
    const collect = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000, freightMode: 2, freightKey: 1 }));
    const courier = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000, freightMode: 2, freightKey: 2 }));
    expect(courier.outTradeNo).not.toBe(collect.outTradeNo);
    expect(await state.attempt(collect.outTradeNo)).toMatchObject({ status: 'superseded', freight_key: 1, freight_fen: 0 });
    expect(await state.attempt(courier.outTradeNo)).toMatchObject({ status: 'open', freight_key: 2, freight_fen: 0 });
    expect(await state.order(u.orderId)).toMatchObject({ open_attempt: { out_trade_no: courier.outTradeNo, freight_key: 2, freight_fen: 0 } });
    // Asked again the same way: the same attempt.
    const again = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000, freightMode: 2, freightKey: 2 }));
    expect(again.outTradeNo).toBe(courier.outTradeNo);
  });

  it('an attempt of before freight choices were recorded is never reused: the tap replaces it with one that records the choice', async () => {
    const u = await givenUser(1000);
    const choice = input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 });
    const old = await payOrder(deps, u.userId, choice);
    // As written before: no freight choice on the attempt or on the order's summary of it.
    await stack.db.send(new UpdateCommand({ TableName: TABLE, Key: keys.attempt(old.outTradeNo), UpdateExpression: 'REMOVE freight_key, freight_fen' }));
    await stack.db.send(
      new UpdateCommand({ TableName: TABLE, Key: keys.order(u.orderId), UpdateExpression: 'REMOVE open_attempt.freight_key, open_attempt.freight_fen' }),
    );
    const again = await payOrder(deps, u.userId, choice);
    expect(again.outTradeNo).not.toBe(old.outTradeNo);
    expect(await state.attempt(old.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.attempt(again.outTradeNo)).toMatchObject({ status: 'open', freight_key: 0, freight_fen: 0 });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it('the same choice returns the same attempt and prepay id, holding the points once', async () => {
    const u = await givenUser(1000);
    const choice = input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 });
    const first = await payOrder(deps, u.userId, choice);
    const second = await payOrder(deps, u.userId, choice);
    expect(second.outTradeNo).toBe(first.outTradeNo);
    expect(wechatParam(second).prepayid).toBe(wechatParam(first).prepayid);
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
    expect(await state.ledger(u.userId)).toHaveLength(1);
  });

  it('an attempt left on an order that is no longer paying (set back to unpaid by hand) is not paid again: a new attempt opens', async () => {
    const u = await givenUser(0);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 1 }));
    await state.setOrderStatus(u.orderId, 'unpaid');
    const again = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 1 }));
    expect(again.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: again.outTradeNo } });
    // The left attempt expires as any other: released, the order not linked to it.
    const left = await stack.app.store.getAttempt(first.outTradeNo);
    expect(await stack.app.store.releaseAttempt(left!, 'expired', new Date().toISOString(), false)).toBe(true);
  });

  it('a different split closes the old attempt at the gateway and moves the hold', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const second = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 300, priceFen: 8500 }));
    expect(second.outTradeNo).not.toBe(first.outTradeNo);
    expect(stack.gateway.trade(first.outTradeNo)?.status).toBe('CLOSED');
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ gsi1pk: expect.stringMatching(/^DUE#/) }); // out of the open list, watched for a late payment
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open', points: 300 });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: second.outTradeNo } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 700, integral_held: 300 });
    const ledger = (await state.ledger(u.userId)).map((e) => [e.kind, e.points, e.out_trade_no]);
    expect(ledger).toEqual(
      expect.arrayContaining([
        ['hold', 800, first.outTradeNo],
        ['release', 800, first.outTradeNo],
        ['hold', 300, second.outTradeNo],
      ]),
    );
    expect(ledger).toHaveLength(3);
  });

  it('a switch whose new prepay fails is refused GATEWAY_ERROR after changing something: the old attempt is closed at its gateway and released, the order unpaid, every point available again, nothing written for the new one', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 300, priceFen: 8500 }));
    stack.gateway.failNext('wechat.prepay', 1, '500');
    const { lines, result: refused } = await captureOutput(() =>
      rejection(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }))),
    );
    expect(refused).toMatchObject({ code: 'GATEWAY_ERROR' });
    expect(lines.map((line) => line.message)).not.toContain('closed attempt was no longer open');
    expect(await state.attemptsOf(u.orderId)).toEqual([expect.objectContaining({ out_trade_no: first.outTradeNo, status: 'superseded', points: 300 })]);
    expect(await state.order(u.orderId)).toMatchObject({ status: 'unpaid' });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    // The next tap starts afresh from the unpaid order.
    const again = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(again.outcome).toBe('pay_param');
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: again.outTradeNo } });
  });

  it('points held by the old attempt count toward a points-only pay that replaces it', async () => {
    const u = await givenUser(8000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 8000, priceFen: 800 }));
    await state.credit(u.userId, 800); // earned while the pay sheet was open
    const paid = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 3, points: 8800, priceFen: 0 }));
    expect(paid.outcome).toBe('paid');
    expect(stack.gateway.trade(first.outTradeNo)?.status).toBe('CLOSED');
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paid', paid_attempt: paid.outTradeNo });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 0, integral_held: 0, integral_spent: 8800 });
  });

  it('if the gateway says the old attempt is paid, no new attempt is opened', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    stack.gateway.pay(first.outTradeNo);
    const before = await state.snapshot();
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 })))).toBe('ORDER_BEING_PAID');
    expect(await state.snapshot()).toEqual(before);
  });

  it('if the old attempt cannot be closed, nothing changes', async () => {
    const u = await givenUser(1000);
    await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const before = await state.snapshot();
    stack.gateway.failNext('wechat.close', 1, '500');
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 })))).toBe('GATEWAY_ERROR');
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('paying again: what the gateway says about the open attempt first', () => {
  /** The table less the gateway-check bookkeeping (when the app last had an attempt checked), which a repeat tap writes. */
  const ledgerState = async () => (await state.snapshot()).filter((item) => item.entity !== ENTITY.gatewayCheck);
  const alipayFirst = async (u: Awaited<ReturnType<typeof givenUser>>) => {
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 800, priceFen: 8000 }));
    alipayParam(first);
    stack.gateway.registerAlipayOrder(first.outcome === 'pay_param' ? String(first.payParam) : '');
    return first;
  };

  it('an Alipay repeat tap asks Alipay: a trade paid meanwhile is refused ORDER_BEING_PAID, and nothing changes', async () => {
    const u = await givenUser(1000);
    const first = await alipayFirst(u);
    stack.gateway.pay(first.outTradeNo);
    const before = await ledgerState();
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 800, priceFen: 8000 })))).toBe('ORDER_BEING_PAID');
    expect(await ledgerState()).toEqual(before);
  });

  it('an Alipay repeat tap that finds the trade closed at Alipay opens a new attempt, the points held once', async () => {
    const u = await givenUser(1000);
    const first = await alipayFirst(u);
    await stack.app.gateways.alipay.closeTrade(first.outTradeNo);
    const again = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 800, priceFen: 8000 }));
    expect(again.outTradeNo).not.toBe(first.outTradeNo);
    expect(alipayParam(again).get('biz_content')).toContain(again.outTradeNo);
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: again.outTradeNo } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  /** WeChat not knowing any trade yet, as for an attempt whose prepay is still on its way. */
  const unknownToWechat = (): PaymentGateway => ({ ...stack.app.gateways.wechat, queryTrade: async () => ({ state: 'not_found' }) });

  it('a switch from an open WeChat attempt that WeChat does not know yet is refused ORDER_BUSY: its prepay may still be on its way, and a close now would not stop it', async () => {
    // Only the code of before 2026-12-01 wrote an attempt before its prepay; while both run (a deploy), such an attempt is young.
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const createdAt = Date.parse(String((await state.attempt(first.outTradeNo))?.created_at));
    const before = await state.snapshot();
    const young = { ...deps, gateways: { ...deps.gateways, wechat: unknownToWechat() }, now: () => new Date(createdAt + 14_999) };
    expect(await refusal(payOrder(young, u.userId, input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 })))).toBe('ORDER_BUSY');
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.trade(first.outTradeNo)).toMatchObject({ status: 'UNPAID', prepayId: wechatParam(first).prepayid });
  });

  /** The gateways, each call recorded as `<operation> <out_trade_no>`. */
  const recorded = (calls: string[]) =>
    beforeEachCall(stack.app.gateways, (_channel, operation, args) => {
      calls.push(`${operation} ${tradeOfCall(args)}`);
    });

  it('a switch from an attempt the gateway already closed, or that is paid, asks once and closes nothing', async () => {
    const u = await givenUser(1000, ['88.00', '88.00']);
    const closed = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    await stack.app.gateways.wechat.closeTrade(closed.outTradeNo);
    const calls: string[] = [];
    const switched = await payOrder({ ...deps, gateways: recorded(calls) }, u.userId, input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 }));
    expect(calls).toEqual([`queryTrade ${closed.outTradeNo}`, `createPayParam ${switched.outTradeNo}`]);

    const other = u.orderIds[1];
    const paid = await payOrder(deps, u.userId, input(other, u.addressId, { method: 4, points: 200, priceFen: 8600 }));
    stack.gateway.pay(paid.outTradeNo);
    calls.length = 0;
    expect(await refusal(payOrder({ ...deps, gateways: recorded(calls) }, u.userId, input(other, u.addressId, { method: 1, points: 0, priceFen: 8800 })))).toBe(
      'ORDER_BEING_PAID',
    );
    expect(calls).toEqual([`queryTrade ${paid.outTradeNo}`]);
  });

  it('a switch whose close of the old attempt is slow stamps the new attempt after the close: its prepay counts as on its way from then, not from the tap', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    let clock = Date.now();
    const wechat = stack.app.gateways.wechat;
    // WeChat slow to close the first attempt: 9 s pass between the tap and the new attempt.
    const slowClose: PaymentGateway = {
      ...wechat,
      closeTrade: async (outTradeNo) => {
        clock += 9_000;
        return wechat.closeTrade(outTradeNo);
      },
    };
    const tappedAt = clock;
    const switched = await payOrder(
      { ...deps, gateways: { ...deps.gateways, wechat: slowClose }, now: () => new Date(clock) },
      u.userId,
      input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 }),
    );
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.attempt(switched.outTradeNo)).toMatchObject({ created_at: new Date(tappedAt + 9_000).toISOString() });
    // 16 s after the tap, 7 s after the new attempt: WeChat not knowing it yet, its prepay may be on its way.
    const unknownToWechat: PaymentGateway = { ...wechat, queryTrade: async () => ({ state: 'not_found' }) };
    const before = await state.snapshot();
    expect(
      await refusal(
        payOrder(
          { ...deps, gateways: { ...deps.gateways, wechat: unknownToWechat }, now: () => new Date(tappedAt + 16_000) },
          u.userId,
          input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }),
        ),
      ),
    ).toBe('ORDER_BUSY');
    expect(await state.snapshot()).toEqual(before);
  });

  it('a WeChat prepay is taken as on its way for 15 s only: a switch at 15 s closes the attempt WeChat does not know and replaces it', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const stuck = first.outTradeNo;
    const createdAt = Date.parse(String((await state.attempt(stuck))?.created_at));
    const calls: string[] = [];
    const gateways = beforeEachCall({ ...stack.app.gateways, wechat: unknownToWechat() }, (_channel, operation, args) => {
      calls.push(`${operation} ${tradeOfCall(args)}`);
    });
    const switched = await payOrder(
      { ...deps, gateways, now: () => new Date(createdAt + 15_000) },
      u.userId,
      input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 }),
    );
    expect(calls).toEqual([`queryTrade ${stuck}`, `closeTrade ${stuck}`, `createPayParam ${switched.outTradeNo}`]);
    expect(await state.attempt(stuck)).toMatchObject({ status: 'superseded' });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: switched.outTradeNo } });
  });

  it('paid between the query and the close: the close is refused as paid, ORDER_BEING_PAID, nothing changes', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const before = await state.snapshot();
    const switched = payOrder(
      { ...deps, gateways: { ...deps.gateways, wechat: paidWhileClosing(stack) } },
      u.userId,
      input(u.orderId, u.addressId, { method: 1, points: 0, priceFen: 8800 }),
    );
    expect(await refusal(switched)).toBe('ORDER_BEING_PAID');
    expect(await state.snapshot()).toEqual(before);
    expect(stack.gateway.trade(first.outTradeNo)).toMatchObject({ status: 'PAID' });
  });
});

describe('gateway failure', () => {
  it.each(['500', 'drop'] as const)('a prepay that fails (%s) is refused GATEWAY_ERROR before anything is written: no attempt, no point held', async (how) => {
    const u = await givenUser(1000);
    const before = await state.snapshot();
    stack.gateway.failNext('wechat.prepay', 1, how);
    expect(await refusal(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 })))).toBe('GATEWAY_ERROR');
    expect(await state.snapshot()).toEqual(before);
    expect(await state.attemptsOf(u.orderId)).toEqual([]);
    expect(await state.ledger(u.userId)).toEqual([]);
    // and the user can simply try again
    const retry = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(retry.outcome).toBe('pay_param');
  });
});

describe('concurrency', () => {
  it('20 parallel identical pays of one order hold the points once and share one attempt', async () => {
    const u = await givenUser(1000);
    const choice = input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => payOrder(deps, u.userId, choice)));
    const succeeded = results.filter((r): r is PromiseFulfilledResult<PayOrderResult> => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as PayError).code);
    expect(succeeded.length).toBeGreaterThan(0);
    expect(new Set(refused)).toEqual(new Set(refused.length ? ['ORDER_BUSY'] : []));
    expect(new Set(succeeded.map((r) => r.outTradeNo)).size).toBe(1);
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
    expect(await state.ledger(u.userId)).toHaveLength(1);
    expect(await state.attemptsOf(u.orderId)).toHaveLength(1);
  });

  it('20 parallel pays with different splits leave exactly one open attempt holding exactly its points', async () => {
    const u = await givenUser(1000);
    await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: i % 2 ? 4 : 5, points: 100 + i, priceFen: 8700 - i })),
      ),
    );
    const attempts = await state.attemptsOf(u.orderId);
    const open = attempts.filter((a) => a.status === 'open');
    expect(open).toHaveLength(1);
    const order = await state.order(u.orderId);
    expect(order).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: open[0].out_trade_no } });
    expect(await state.account(u.userId)).toMatchObject({ integral_held: open[0].points, integral_available: 1000 - (open[0].points as number) });
    const ledger = await state.ledger(u.userId);
    const net = ledger.reduce((sum, e) => sum + (e.kind === 'hold' ? (e.points as number) : -(e.points as number)), 0);
    expect(net).toBe(open[0].points);
  });

  it('parallel points-only pays of several orders never spend more than the balance', async () => {
    const u = await givenUser(10000, ['30.00', '30.00', '30.00', '30.00', '30.00', '30.00']);
    const results = await Promise.allSettled(
      u.orderIds.map((orderId) => payOrder(deps, u.userId, input(orderId, u.addressId, { method: 3, points: 3000, priceFen: 0 }))),
    );
    const paid = results.filter((r) => r.status === 'fulfilled');
    expect(paid).toHaveLength(3);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as PayError).code).toMatch(/^(INTEGRAL_NOT_ENOUGH|ORDER_BUSY)$/);
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 1000, integral_held: 0, integral_spent: 9000 });
    expect((await state.ledger(u.userId)).filter((e) => e.kind === 'spend')).toHaveLength(3);
  });
});

describe('what a repeat tap reuses', () => {
  const MINUTE = 60_000;

  it('an attempt more than 2 minutes from its expiry is handed out again; at 2 minutes it is replaced', async () => {
    const u = await givenUser(0);
    const choice = input(u.orderId, u.addressId, { method: 1 });
    const first = await payOrder(deps, u.userId, choice);
    const expiresAt = Date.parse(String((await state.attempt(first.outTradeNo))?.expires_at));
    const beforeExpiry = (ms: number): PayOrderDeps => ({ ...deps, now: () => new Date(expiresAt - ms) });
    expect((await payOrder(beforeExpiry(2 * MINUTE + 1), u.userId, choice)).outTradeNo).toBe(first.outTradeNo);
    const replaced = await payOrder(beforeExpiry(2 * MINUTE), u.userId, choice);
    expect(replaced.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
  });

  it('the same method and cash but other points (the freight changed with them) is another choice: a new attempt holding the new points', async () => {
    const u = await givenUser(3000, ['88.00'], '12.00');
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000, freightMode: 2, freightKey: 1 }));
    const second = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 2000, priceFen: 8000, freightMode: 2, freightKey: 2 }));
    expect(second.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open', cash_fen: 8000, points: 2000 });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 1000, integral_held: 2000 });
  });

  it('the same choice to another address is another choice: a new attempt that ships there', async () => {
    const u = await givenUser(0);
    const otherAddress = u.addressId + 5;
    await stack.seed({ addresses: [sampleAddress(u.userId, otherAddress)] });
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 1 }));
    const second = await payOrder(deps, u.userId, input(u.orderId, otherAddress, { method: 1 }));
    expect(second.outTradeNo).not.toBe(first.outTradeNo);
    expect(await state.attempt(second.outTradeNo)).toMatchObject({ status: 'open', address_id: otherAddress });
  });

  it('a switch from an attempt without a prepay id (Alipay) clears none, and its line names the attempt it replaced', async () => {
    const u = await givenUser(0);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 2 }));
    stack.gateway.registerAlipayOrder(first.outcome === 'pay_param' ? String(first.payParam) : '');
    const kept: (string | undefined)[] = [];
    const store = storeWith(stack, {
      rememberPrepayId: (attempt, prepayId) => {
        kept.push(prepayId);
        return stack.app.store.rememberPrepayId(attempt, prepayId);
      },
    });
    logger.resetKeys();
    const { lines, result } = await captureOutput(() => payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 1 })));
    expect(kept).toEqual([]); // nothing to clear, and the new prepay id is kept in the one write
    expect(await state.order(u.orderId)).toMatchObject({ open_attempt: { out_trade_no: result.outTradeNo, prepay_id: wechatParam(result).prepayid } });
    expect(lines.find((line) => line.message === 'attempt opened')).toMatchObject({
      order_id: u.orderId,
      method: 1,
      superseded: first.outTradeNo,
      out_trade_no: result.outTradeNo,
    });
  });

  it('a repeat tap with too little time left is refused ORDER_BUSY; the line says how much time, for how many steps, and which attempt', async () => {
    const u = await givenUser(0);
    const choice = input(u.orderId, u.addressId, { method: 1 });
    const first = await payOrder(deps, u.userId, choice);
    logger.resetKeys();
    const { lines, result } = await captureOutput(() => refusal(payOrder({ ...deps, deadline: { remainingMs: () => 5_000.4 } }, u.userId, choice)));
    expect(result).toBe('ORDER_BUSY');
    expect(lines.find((line) => line.message === 'not enough time left for the next steps')).toMatchObject({
      remaining_ms: 5000,
      gateway_steps: 1,
      order_id: u.orderId,
      out_trade_no: first.outTradeNo,
    });
  });
});

describe('what a failure leaves and says', () => {
  it("a prepay that fails: GATEWAY_ERROR caused by the gateway's error, one line naming the trade asked for and its method, nothing written", async () => {
    const u = await givenUser(1000);
    stack.gateway.failNext('wechat.prepay', 1, '500');
    logger.resetKeys();
    const { lines, result } = await captureOutput(() =>
      rejection(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }))),
    );
    expect(result).toMatchObject({ code: 'GATEWAY_ERROR', cause: expect.any(GatewayError) });
    expect(lines.find((line) => line.message === 'gateway error')).toMatchObject({
      out_trade_no: expect.stringMatching(new RegExp(`^${u.orderId}T\\d+$`)),
      method: 4,
    });
    expect(lines.map((line) => line.message)).not.toContain('attempt opened');
    expect(await state.attemptsOf(u.orderId)).toEqual([]);
  });

  /** An open Alipay + points attempt, then a switch to WeChat whose prepay fails, against `store`. */
  const switchFailing = async (store: PayOrderDeps['store']) => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 300, priceFen: 8500 }));
    stack.gateway.failNext('wechat.prepay', 1, '500');
    logger.resetKeys();
    const { lines, result } = await captureOutput(() =>
      refusal(payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }))),
    );
    return { u, first, lines, result };
  };

  it('a failed prepay after a switch whose closed attempt was no longer open to release: a warning naming it, and the refusal still GATEWAY_ERROR', async () => {
    const { first, lines, result } = await switchFailing(storeWith(stack, { releaseAttempt: async () => false }));
    expect(result).toBe('GATEWAY_ERROR');
    expect(lines.find((line) => line.message === 'closed attempt was no longer open')).toMatchObject({ out_trade_no: first.outTradeNo });
    // Left open, holding its points: the next tap replaces it, or the sweeper's next query releases it (sweepSchedule.test.ts).
    await stack.app.store.releaseAttempt((await stack.app.store.getAttempt(first.outTradeNo))!, 'superseded', new Date().toISOString());
  });

  it('a failed prepay after a switch whose release fails too: an error line with the closed attempt and the release error, and the refusal still GATEWAY_ERROR', async () => {
    const store = storeWith(stack, {
      releaseAttempt: async () => {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      },
    });
    const { first, lines, result } = await switchFailing(store);
    expect(result).toBe('GATEWAY_ERROR');
    const line = lines.find((l) => l.message === 'releasing a closed attempt failed');
    expect(line).toMatchObject({ out_trade_no: first.outTradeNo });
    expect(JSON.stringify(line)).toContain('socket hang up');
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'open' });
    await stack.app.store.releaseAttempt((await stack.app.store.getAttempt(first.outTradeNo))!, 'superseded', new Date().toISOString());
  });

  it('a first pay keeps its prepay id in its one write; a repeat tap that asks WeChat again and cannot keep the new one: the pay_param all the same, and a warning naming the attempt', async () => {
    const u = await givenUser(0);
    const kept: (string | undefined)[] = [];
    const keeping = storeWith(stack, {
      rememberPrepayId: async (_attempt, prepayId) => {
        kept.push(prepayId);
        throw new Error('ProvisionedThroughputExceeded');
      },
    });
    const first = await payOrder({ ...deps, store: keeping }, u.userId, input(u.orderId, u.addressId, { method: 1 }));
    expect(kept).toEqual([]);
    expect(await state.order(u.orderId)).toMatchObject({ open_attempt: { out_trade_no: first.outTradeNo, prepay_id: wechatParam(first).prepayid } });
    logger.resetKeys();
    // The first repeat tap claims the gateway check: WeChat is asked again for the same trade.
    const { lines, result } = await captureOutput(() => payOrder({ ...deps, store: keeping }, u.userId, input(u.orderId, u.addressId, { method: 1 })));
    expect(result.outTradeNo).toBe(first.outTradeNo);
    expect(wechatParam(result).prepayid).toMatch(/^wx/);
    expect(kept).toEqual([wechatParam(result).prepayid]);
    expect(lines.find((line) => line.message === 'prepay id not kept')).toMatchObject({ out_trade_no: result.outTradeNo });
  });

  it('a race lost after the prepay and decided the same again writes the attempt already asked for: one prepay, not one per try', async () => {
    const u = await givenUser(1000);
    let lost = 0;
    const store = storeWith(stack, {
      commitAttempt: async (change) => {
        // The points account written by another of the user's requests, twice (TransactionConflict on DynamoDB).
        if (lost++ < 2) throw new WriteConflict('points');
        return stack.app.store.commitAttempt(change);
      },
    });
    const calls: string[] = [];
    const gateways = beforeEachCall(stack.app.gateways, (_channel, operation, args) => {
      calls.push(`${operation} ${tradeOfCall(args)}`);
    });
    const paid = await payOrder({ ...deps, store, gateways }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(lost).toBe(3);
    expect(calls).toEqual([`createPayParam ${paid.outTradeNo}`]);
    expect(await state.order(u.orderId)).toMatchObject({ open_attempt: { out_trade_no: paid.outTradeNo, prepay_id: wechatParam(paid).prepayid } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it("a race lost after the prepay to another tap that opened its own attempt: the retry supersedes it with writes stamped after it, not at the kept attempt's creation", async () => {
    const u = await givenUser(1000);
    let other: PayOrderResult | undefined;
    const store = storeWith(stack, {
      commitAttempt: async (change) => {
        if (!other) {
          other = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 300, priceFen: 8500 }));
          throw new WriteConflict('state');
        }
        return stack.app.store.commitAttempt(change);
      },
    });
    const paid = await payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const superseded = await state.attempt(other!.outTradeNo);
    expect(superseded).toMatchObject({ status: 'superseded' });
    const created = String(superseded?.created_at);
    const release = (await state.ledger(u.userId)).find((e) => e.kind === 'release' && e.out_trade_no === other!.outTradeNo);
    // The user's points statement: the other tap's hold, then its release, never the release first.
    expect(String(release?.created_at) > created).toBe(true);
    expect(String(superseded?.updated_at) > created).toBe(true);
    expect(String((await state.order(u.orderId))?.updated_at) > created).toBe(true);
    expect(await state.order(u.orderId)).toMatchObject({ open_attempt: { out_trade_no: paid.outTradeNo } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it('a switch whose closed attempt the sweeper releases while the new prepay is out: the retry writes the new attempt alone, one prepay, the points held once', async () => {
    const u = await givenUser(1000);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 5, points: 300, priceFen: 8500 }));
    let swept = false;
    const store = storeWith(stack, {
      commitAttempt: async (change) => {
        if (!swept && change.previous) {
          swept = true;
          // The sweeper's query found the old trade closed and released it (sweep.ts), between the close and this write.
          const old = await stack.app.store.getAttempt(change.previous.outTradeNo);
          expect(await stack.app.store.releaseAttempt(old!, 'superseded', new Date().toISOString())).toBe(true);
        }
        return stack.app.store.commitAttempt(change);
      },
    });
    const asked: string[] = [];
    const gateways = beforeEachCall(stack.app.gateways, (_channel, operation, args) => {
      if (operation === 'createPayParam') asked.push(tradeOfCall(args));
    });
    const paid = await payOrder({ ...deps, store, gateways }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(asked).toEqual([paid.outTradeNo]);
    expect(await state.attempt(first.outTradeNo)).toMatchObject({ status: 'superseded' });
    expect(await state.order(u.orderId)).toMatchObject({ status: 'paying', open_attempt: { out_trade_no: paid.outTradeNo } });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
    const releases = (await state.ledger(u.userId)).filter((e) => e.kind === 'release');
    expect(releases.map((e) => e.out_trade_no)).toEqual([first.outTradeNo]);
  });

  it('a race lost after the prepay to a change of price: the retry asks for a new attempt at the new price, never writes the old one', async () => {
    const u = await givenUser(0);
    let lost = 0;
    const store = storeWith(stack, {
      commitAttempt: async (change) => {
        if (lost++ === 0) {
          // The shop repriced the order meanwhile: the same total (free shipping), a courier option added.
          await stack.db.send(
            new UpdateCommand({
              TableName: TABLE,
              Key: keys.order(u.orderId),
              UpdateExpression: 'SET freight_options = :options',
              ExpressionAttributeValues: { ':options': [{ key: 2, name: '顺丰', fee_fen: 1200 }] },
            }),
          );
          throw new WriteConflict('state');
        }
        return stack.app.store.commitAttempt(change);
      },
    });
    const asked: string[] = [];
    const gateways = beforeEachCall(stack.app.gateways, (_channel, operation, args) => {
      if (operation === 'createPayParam') asked.push(tradeOfCall(args));
    });
    const paid = await payOrder({ ...deps, store, gateways }, u.userId, input(u.orderId, u.addressId, { method: 1 }));
    expect(asked).toHaveLength(2);
    expect(paid.outTradeNo).toBe(asked[1]);
    expect(await state.attemptsOf(u.orderId)).toEqual([
      expect.objectContaining({ out_trade_no: asked[1], quoted_price: expect.objectContaining({ freight_options: [expect.objectContaining({ key: 2 })] }) }),
    ]);
  });

  it('a race lost every time: ORDER_BUSY caused by the last lost race', async () => {
    const u = await givenUser(0);
    const store = storeWith(stack, {
      commitAttempt: async () => {
        throw new WriteConflict('state');
      },
    });
    expect(await rejection(payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 1 })))).toMatchObject({
      code: 'ORDER_BUSY',
      cause: new WriteConflict('state'),
    });
  });

  it('an Alipay trade found paid at a repeat tap: ORDER_BEING_PAID caused by what Alipay said', async () => {
    const u = await givenUser(0);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 2 }));
    stack.gateway.registerAlipayOrder(first.outcome === 'pay_param' ? String(first.payParam) : '');
    stack.gateway.pay(first.outTradeNo);
    expect(await rejection(payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 2 })))).toMatchObject({
      code: 'ORDER_BEING_PAID',
      cause: { name: 'TradeAlreadyPaid' },
    });
  });
});

describe("the pay's read: each item as last written, one instant's snapshot only to confirm a refusal", () => {
  /** The store, with the first `latest` read changed by `tear` as a concurrent write between its items would leave it. */
  function tornOnce(tear: (context: PayContext) => PayContext) {
    const reads: PayContextRead[] = [];
    const store = storeWith(stack, {
      loadPayContext: async (userId, orderId, addressId, read) => {
        reads.push(read);
        const context = await stack.app.store.loadPayContext(userId, orderId, addressId, read);
        return read === 'latest' && reads.length === 1 ? tear(context) : context;
      },
    });
    return { store, reads };
  }

  it('an accepted pay reads once; a refusal is read again at one instant and still changes nothing', async () => {
    const u = await givenUser(1000);
    const { store, reads } = tornOnce((context) => context);
    await payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(reads).toEqual(['latest']);

    const v = await givenUser(500);
    const refused = tornOnce((context) => context);
    const before = await state.snapshot();
    expect(
      await refusal(payOrder({ ...deps, store: refused.store }, v.userId, input(v.orderId, v.addressId, { method: 4, points: 501, priceFen: 8299 }))),
    ).toBe('INTEGRAL_INVALID');
    expect(refused.reads).toEqual(['latest', 'snapshot']);
    expect(await state.snapshot()).toEqual(before);
  });

  it("a fault of the database on the read is the database's answer, not a refusal to confirm: no second read", async () => {
    const u = await givenUser(1000);
    const fault = Object.assign(new Error('Throughput exceeds the current capacity of your table'), { name: 'ThrottlingException' });
    const reads: PayContextRead[] = [];
    const store = storeWith(stack, {
      loadPayContext: async (_userId, _orderId, _addressId, read) => {
        reads.push(read);
        throw fault;
      },
    });
    expect(await rejection(payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 })))).toBe(fault);
    expect(reads).toEqual(['latest']);
  });

  it('a repeat tap that read its order from before the first tap and the points after it (points held, order not yet paying) gets the open attempt, not a refusal', async () => {
    const u = await givenUser(1000);
    const unpaid = await stack.app.store.getOrder(u.orderId);
    const first = await payOrder(deps, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    // 200 points available and no open attempt to count its 800 back: alone, this read refuses.
    const { store, reads } = tornOnce((context) => ({ ...context, order: unpaid }));
    const again = await payOrder({ ...deps, store }, u.userId, input(u.orderId, u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    expect(reads).toEqual(['latest', 'snapshot']);
    expect(again.outTradeNo).toBe(first.outTradeNo);
    expect(await state.attemptsOf(u.orderId)).toHaveLength(1);
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800 });
  });

  it("a read that counts points another order holds as available is accepted, and the one write's points condition refuses it: nothing held twice, then the clear refusal", async () => {
    const u = await givenUser(1000, ['88.00', '88.00']);
    const untouched = await stack.app.store.getAccount(u.userId);
    await payOrder(deps, u.userId, input(u.orderIds[0], u.addressId, { method: 4, points: 800, priceFen: 8000 }));
    const { store, reads } = tornOnce((context) => ({ ...context, account: untouched }));
    const lost: string[] = [];
    store.commitAttempt = (change) =>
      stack.app.store.commitAttempt(change).catch((error: unknown) => {
        if (error instanceof WriteConflict) lost.push(error.part);
        throw error;
      });
    expect(await refusal(payOrder({ ...deps, store }, u.userId, input(u.orderIds[1], u.addressId, { method: 4, points: 1000, priceFen: 7800 })))).toBe(
      'INTEGRAL_INVALID',
    );
    expect(lost).toEqual(['points']);
    expect(reads).toEqual(['latest', 'latest', 'snapshot']);
    expect(await state.attemptsOf(u.orderIds[1])).toEqual([]);
    expect(await state.order(u.orderIds[1])).toMatchObject({ status: 'unpaid' });
    expect(await state.account(u.userId)).toMatchObject({ integral_available: 200, integral_held: 800, integral_spent: 0 });
  });
});

describe('out_trade_no', () => {
  it('is the order, T, the time in ms and 4 random digits, zero-padded', async () => {
    const u = await givenUser(0);
    // The module object itself (an ES namespace import is frozen), as lib/pay/payOrder.ts reads it at each call.
    const random = jest.spyOn(jest.requireActual<typeof import('node:crypto')>('node:crypto'), 'randomInt').mockImplementation((() => 7) as never);
    try {
      const now = new Date();
      const result = await payOrder({ ...deps, now: () => now }, u.userId, input(u.orderId, u.addressId, { method: 1 }));
      expect(result.outTradeNo).toBe(`${u.orderId}T${now.getTime()}0007`);
    } finally {
      random.mockRestore();
    }
  });
});
