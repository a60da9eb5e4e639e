import { createVerify } from 'node:crypto';
import type { PaymentGateway, WechatPayParam } from '../../../lib/gateways/paymentGateway';
import type { PayOrderResult } from '../../../lib/pay/payOrder';
import { getPayStatus } from '../../../lib/pay/payStatus';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { givenUser, pay, payDeps } from '../../support/world';

/**
 * Issue 11, item 3: the app's calls cannot spend the merchant's gateway rate limit. Status calls and
 * repeat taps make at most one gateway call per attempt per 30 seconds, however many come, at once or
 * in a row; in between the table answers and WeChat's pay_param is signed again locally.
 */
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => expectBalancedBooksThenClose(stack));

const SECOND = 1_000;

/** The stack's gateway for `channel`, counting each call by operation. */
function counted(channel: 'wechat' | 'alipay') {
  const calls: Record<string, number> = {};
  const real = stack.app.gateways[channel];
  const count = <T>(op: string, call: () => Promise<T>) => {
    calls[op] = (calls[op] ?? 0) + 1;
    return call();
  };
  const gateway: PaymentGateway = {
    ...real,
    channel,
    createPayParam: (r) => count('prepay', () => real.createPayParam(r)),
    queryTrade: (no) => count('query', () => real.queryTrade(no)),
    closeTrade: (no) => count('close', () => real.closeTrade(no)),
  };
  return { calls, gateways: { ...stack.app.gateways, [channel]: gateway } };
}

const at = (ms: number) => () => new Date(Date.now() + ms);
const payParamOf = (result: PayOrderResult) => (result.outcome === 'pay_param' ? result.payParam : undefined);

it('100 status calls on an order paying for over a minute make one gateway query per 30 s, concurrent ones included', async () => {
  const user = await givenUser(stack, 0);
  await pay(stack, user, { method: 1 });
  const { calls, gateways } = counted('wechat');
  const status = (ms: number) => getPayStatus({ ...stack.app, gateways, now: at(ms) }, user.userId, user.orderId);

  const answers = await Promise.all(Array.from({ length: 50 }, () => status(2 * 60 * SECOND)));
  for (let i = 0; i < 50; i++) answers.push(await status(2 * 60 * SECOND + 10 * SECOND));
  expect(answers.every((a) => a.order_status === 'paying')).toBe(true);
  expect(calls).toEqual({ query: 1 });

  await status(2 * 60 * SECOND + 31 * SECOND); // the interval has passed
  expect(calls).toEqual({ query: 2 });
});

it('a paid order found by the one query is answered paid, and the calls after it need no gateway at all', async () => {
  const user = await givenUser(stack, 0);
  const opened = await pay(stack, user, { method: 1 });
  stack.gateway.pay(opened.outTradeNo); // paid, its notification lost
  const { calls, gateways } = counted('wechat');
  const status = () => getPayStatus({ ...stack.app, gateways, now: at(2 * 60 * SECOND) }, user.userId, user.orderId);
  expect(await status()).toMatchObject({ order_status: 'paid' });
  for (let i = 0; i < 10; i++) expect(await status()).toMatchObject({ order_status: 'paid' });
  expect(calls).toEqual({ query: 1 });
});

it('WeChat repeat taps: WeChat is asked at most once per 30 s; in between the same prepay is signed again, verifiably', async () => {
  const user = await givenUser(stack, 0);
  const { calls, gateways } = counted('wechat');
  const tap = (ms: number) => pay(stack, user, { method: 1 }, payDeps(stack, { gateways, now: at(ms) }));
  const first = await tap(0);
  const taps = [];
  for (let i = 0; i < 20; i++) taps.push(await tap(i * SECOND));
  expect(taps.every((t) => t.outTradeNo === first.outTradeNo)).toBe(true);
  expect(calls).toEqual({ prepay: 2 }); // the first pay, and the first repeat tap's check

  const { merchant_cert_pem } = stack.credentials.wechat;
  for (const t of taps) {
    const p = payParamOf(t) as WechatPayParam;
    expect(p).toMatchObject({ prepayid: (payParamOf(first) as WechatPayParam).prepayid, package: 'Sign=WXPay', partnerid: stack.credentials.wechat.mchid });
    const signed = `${p.appid}\n${p.timestamp}\n${p.noncestr}\n${p.prepayid}\n`;
    expect(createVerify('RSA-SHA256').update(signed).verify(merchant_cert_pem, p.sign, 'base64')).toBe(true);
  }
  await tap(31 * SECOND);
  expect(calls).toEqual({ prepay: 3 });
});

it('Alipay repeat taps query Alipay at most once per 30 s', async () => {
  const user = await givenUser(stack, 0);
  const { calls, gateways } = counted('alipay');
  const tap = (ms: number) => pay(stack, user, { method: 2 }, payDeps(stack, { gateways, now: at(ms) }));
  const first = await tap(0);
  stack.gateway.registerAlipayOrder(payParamOf(first) as string);
  const taps = await Promise.all(Array.from({ length: 10 }, () => tap(5 * SECOND)));
  expect(taps.every((t) => t.outTradeNo === first.outTradeNo && typeof payParamOf(t) === 'string')).toBe(true);
  expect(calls.query).toBe(1);
});

it('no bypass: a WeChat attempt with no prepay id kept asks WeChat once per 30 s; a tap in between is told to wait', async () => {
  const user = await givenUser(stack, 0);
  const { calls, gateways } = counted('wechat');
  const tap = (ms: number) => pay(stack, user, { method: 1 }, payDeps(stack, { gateways, now: at(ms) }));
  const first = await tap(0);
  // An attempt from before prepay ids were kept: none on the order's summary.
  await stack.app.store.rememberPrepayId({ orderId: user.orderId, outTradeNo: first.outTradeNo }, undefined);
  expect((await tap(SECOND)).outTradeNo).toBe(first.outTradeNo); // asks WeChat (and keeps the id again)
  await stack.app.store.rememberPrepayId({ orderId: user.orderId, outTradeNo: first.outTradeNo }, undefined);
  await expect(tap(2 * SECOND)).rejects.toMatchObject({ code: 'ORDER_BUSY' });
  expect(calls).toEqual({ prepay: 2 });
});

it('a supersede forgets the prepay it closed: within the 30 s, the old choice is never signed for the closed trade', async () => {
  const user = await givenUser(stack, 0);
  const { calls, gateways } = counted('wechat');
  const first = await pay(stack, user, { method: 1 }, payDeps(stack, { gateways }));
  await pay(stack, user, { method: 1 }, payDeps(stack, { gateways })); // a repeat tap: WeChat checked, the interval starts
  // Another choice closes the WeChat trade, then runs out of time before writing the new attempt.
  let reads = 0;
  const runningOut = { remainingMs: () => (reads++ === 0 ? 60_000 : 0) };
  await expect(pay(stack, user, { method: 2 }, payDeps(stack, { gateways, deadline: runningOut }))).rejects.toMatchObject({ code: 'ORDER_BUSY' });
  expect(calls.close).toBe(1);
  // The old choice again, within the interval: not the closed trade's pay_param.
  const again = await pay(stack, user, { method: 1 }, payDeps(stack, { gateways })).then(
    (result) => result.outTradeNo,
    (error: { code?: string }) => error.code,
  );
  expect(again).not.toBe(first.outTradeNo);
});
