import { spawn } from 'node:child_process';
import { createVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SETTLE_MS } from '../../lib/events/dispatchEvents';
import { DEMO_FIXTURE_FILE, DEMO_REQUESTS } from '../../scripts/local/demo';
import { localWebhookSecret } from '../../scripts/local/environment';
import { type EventReceiver, startEventReceiver } from '../../scripts/local/eventReceiver';
import { invokeLocalFunction } from '../../scripts/local/invokeLocal';
import { type Offline, startOffline } from '../../scripts/local/offline';
import { buildPaymentNotificationForTrade } from '../../scripts/sandbox/notifications';
import { fetchInContract } from '../support/contract';
import { freePort } from '../support/ports';
import { startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';

/**
 * Real HTTP through serverless offline: the bundled function, the offline API Gateway, dynalite and the
 * sandbox. Every reply is checked against the API contract, docs/openapi.yaml (`fetchInContract`).
 */
const ROOT = join(__dirname, '..', '..');
let stack: TestStack;
let offline: Offline;
let lambdaEndpoint: string;
let receiver: EventReceiver;

beforeAll(async () => {
  const [httpPort, lambdaPort, webhookPort] = [await freePort(), await freePort(), await freePort()];
  lambdaEndpoint = `http://127.0.0.1:${lambdaPort}`;
  stack = await startTestStack({ notifyBaseUrl: `http://127.0.0.1:${httpPort}`, env: { SHOP_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/paynow/events` } });
  receiver = await startEventReceiver({ secret: localWebhookSecret(stack.credentials), port: webhookPort });
  await stack.seed(JSON.parse(readFileSync(DEMO_FIXTURE_FILE, 'utf8')));
  offline = await startOffline({ env: { ...stack.env, ESBUILD_WORK_FOLDER: '.esbuild-test-offline' }, httpPort, lambdaPort, quiet: true });
}, 120_000);
afterAll(async () => {
  await offline?.stop();
  await receiver?.close();
  if (stack) expect((await stack.reconcile()).problems).toEqual([]);
  await stack?.close();
});

async function post(path: string, headers: Record<string, string>, body: string) {
  const reply = await fetchInContract(`${offline.url}${path}`, { method: 'POST', headers, body });
  return { status: reply.status, body: reply.json<{ status: number; msg: string; code?: string; data: any }>() };
}

/** What the gateway does for a paid trade: sends its signed notification to the trade's notify_url. */
async function deliverNotification(outTradeNo: string) {
  const trade = stack.gateway.trade(outTradeNo);
  if (!trade?.notifyUrl) throw new Error(`no notify_url for ${outTradeNo}`);
  const { headers, body } = buildPaymentNotificationForTrade(trade, stack.gateway.credentials);
  const reply = await fetchInContract(trade.notifyUrl, { method: 'POST', headers, body });
  return { url: trade.notifyUrl, status: reply.status, body: reply.text };
}

describe('the demo curls npm start prints', () => {
  it.each(DEMO_REQUESTS.map((r) => [r.title, r] as const))('%s', async (_title, request) => {
    const { status, body } = await post('/order/pay', { 'content-type': 'application/json', token: request.token }, JSON.stringify(request.body));
    expect(status).toBe(200);
    switch (request.expect) {
      case 'wechat': {
        expect(body).toMatchObject({ status: 200, msg: '下单成功' });
        const p = body.data.pay_param;
        expect(stack.gateway.trade(body.data.out_trade_no)?.prepayId).toBe(p.prepayid);
        const signed = `${p.appid}\n${p.timestamp}\n${p.noncestr}\n${p.prepayid}\n`;
        expect(createVerify('RSA-SHA256').update(signed).verify(stack.credentials.wechat.merchant_cert_pem, p.sign, 'base64')).toBe(true);
        break;
      }
      case 'alipay': {
        expect(body).toMatchObject({ status: 200, msg: '下单成功' });
        const trade = stack.gateway.registerAlipayOrder(body.data.pay_param);
        expect(trade.amountFen).toBe(Math.round(Number(request.body.pay_price) * 100));
        expect(trade.notifyUrl).toBe(`${offline.url}/notify/alipay`);
        break;
      }
      case 'points':
        expect(body).toEqual({ status: 200, msg: '支付成功', data: { pay_param: null, out_trade_no: expect.any(String) } });
        break;
      case 'token_expired':
        expect(body).toEqual({ status: 0, msg: 'token过期', code: 'TOKEN_EXPIRED', data: [] });
        break;
    }
  });
});

describe('over HTTP', () => {
  it('accepts the form encoding older app builds send', async () => {
    const form = new URLSearchParams({
      order_id: '501',
      pay_method: '1',
      pay_price: '100',
      pay_integral: '0',
      address_id: '11',
      freight_mode: '2',
      freight_json_arr_key: '2',
    });
    const { body } = await post('/order/pay', { 'content-type': 'application/x-www-form-urlencoded', token: 'demo-1001' }, form.toString());
    expect(body).toMatchObject({ status: 200, msg: '下单成功', data: { pay_param: { package: 'Sign=WXPay' } } });
  });

  it('refuses a tampered price with the envelope and changes nothing', async () => {
    const state = tableState(stack);
    const before = await state.snapshot();
    const { status, body } = await post(
      '/order/pay',
      { 'content-type': 'application/json', token: 'demo-1001' },
      JSON.stringify({ ...DEMO_REQUESTS[0].body, pay_price: '0.01' }),
    );
    expect(status).toBe(200);
    expect(body).toEqual({ status: 0, msg: '支付金额与订单应付金额不一致(应付100.00元)', code: 'PRICE_MISMATCH', data: [] });
    expect(await state.snapshot()).toEqual(before);
    state.close();
  });

  it('answers malformed JSON with the envelope, not a 4xx/5xx', async () => {
    const { status, body } = await post('/order/pay', { 'content-type': 'application/json', token: 'demo-1001' }, '{"order_id":');
    expect(status).toBe(200);
    expect(body).toEqual({ status: 0, msg: '请求格式错误', code: 'INVALID_BODY', data: [] });
  });
});

describe('the local walk-through: pay, the gateway notifies, status', () => {
  it.each([
    [
      'WeChat + points',
      { order_id: 503, pay_method: 4, pay_price: '29.90', pay_integral: 3000, address_id: 11, freight_mode: 2, freight_json_arr_key: 1 },
      'wechat',
    ],
    ['Alipay + points', { order_id: 504, pay_method: 5, pay_price: '118.00', pay_integral: 1000, address_id: 11, freight_mode: 1 }, 'alipay'],
  ])('%s', async (_title, body, channel) => {
    await stack.seed(JSON.parse(readFileSync(DEMO_FIXTURE_FILE, 'utf8')));
    const paid = await post('/order/pay', { 'content-type': 'application/json', token: 'demo-1001' }, JSON.stringify(body));
    expect(paid.body.status).toBe(200);
    const outTradeNo = paid.body.data.out_trade_no as string;
    if (channel === 'alipay') stack.gateway.registerAlipayOrder(paid.body.data.pay_param);
    stack.gateway.pay(outTradeNo);
    const delivery = await deliverNotification(outTradeNo);
    expect(delivery.url).toBe(`${offline.url}/notify/${channel}`);
    // The whole delivery is compared so that a failure shows what the endpoint answered.
    expect({ status: delivery.status, body: delivery.body }).toEqual(channel === 'wechat' ? { status: 204, body: '' } : { status: 200, body: 'success' });

    const status = await fetchInContract(`${offline.url}/order/pay/status?order_id=${body.order_id}`, { headers: { token: 'demo-1001' } });
    expect(status.json()).toEqual({
      status: 200,
      msg: 'ok',
      data: {
        order_id: body.order_id,
        order_status: 'paid',
        pay_method: body.pay_method,
        pay_price: body.pay_price,
        pay_integral: body.pay_integral,
        out_trade_no: outTradeNo,
        paid_at: expect.stringMatching(/\+08:00$/),
        refund: null,
      },
    });
  });

  it('a forged notification over HTTP is refused and changes nothing', async () => {
    const state = tableState(stack);
    const before = await state.snapshot();
    const wechat = await fetchInContract(`${offline.url}/notify/wechat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'wechatpay-serial': 'x' },
      body: '{}',
    });
    expect(wechat.status).toBe(401);
    expect(wechat.json()).toMatchObject({ code: 'FAIL' });
    const alipay = await fetchInContract(`${offline.url}/notify/alipay`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'out_trade_no=1&sign=x',
    });
    expect(alipay.text).toBe('fail');
    expect(await state.snapshot()).toEqual(before);
    state.close();
  });
});

describe('refunds, as an operator runs them on the local stack', () => {
  /**
   * `npm run refund -- …` / `npm run sweep`, against this stack's Lambda endpoint. Asynchronously: the
   * stack's database and gateways live in this process and must keep answering meanwhile.
   */
  function script(name: 'refund' | 'sweep' | 'shop', args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(ROOT, 'scripts', `${name}.ts`), ...args], {
        cwd: ROOT,
        env: { ...process.env, PAYNOW_LAMBDA_ENDPOINT: lambdaEndpoint },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
      child.on('close', (code) => resolve({ code, out, err }));
    });
  }

  it('npm run refund refunds a paid order through refundOrder; WeChat notifies over HTTP; the app sees it refunded', async () => {
    await stack.seed(JSON.parse(readFileSync(DEMO_FIXTURE_FILE, 'utf8')));
    const body = { order_id: 503, pay_method: 4, pay_price: '29.90', pay_integral: 3000, address_id: 11, freight_mode: 2, freight_json_arr_key: 1 };
    const paid = await post('/order/pay', { 'content-type': 'application/json', token: 'demo-1001' }, JSON.stringify(body));
    const outTradeNo = paid.body.data.out_trade_no as string;
    stack.gateway.pay(outTradeNo);
    expect((await deliverNotification(outTradeNo)).status).toBe(204);

    const refund = await script('refund', ['503', '--reason', '用户取消订单']);
    expect({ code: refund.code, err: refund.err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(refund.out)).toMatchObject({
      order_id: 503,
      order_status: 'refunding',
      refund: { out_refund_no: `${outTradeNo}R1`, status: 'pending', refund_price: '29.90', refund_integral: 3000 },
    });
    await stack.gateway.refundsSettled(); // REFUND.SUCCESS to /notify/wechat/refund, through serverless offline
    expect(stack.gateway.refunds(outTradeNo)[0].notification).toMatchObject({ url: `${offline.url}/notify/wechat/refund`, status: 204 });

    const status = await fetchInContract(`${offline.url}/order/pay/status?order_id=503`, { headers: { token: 'demo-1001' } });
    expect(status.json().data).toMatchObject({
      order_status: 'refunded',
      refund: { status: 'succeeded', refund_price: '29.90', refund_integral: 3000, refunded_at: expect.stringMatching(/\+08:00$/) },
    });
    // Asked again: done already, exit 0, nothing more refunded.
    expect((await script('refund', ['503', '--reason', '用户取消订单'])).code).toBe(0);
    expect(stack.gateway.refunds(outTradeNo)).toHaveLength(1);
  });

  it('npm run refund exits 1 with the refusal for an unknown order, 2 for a usage error; npm run sweep prints the report', async () => {
    const unknown = await script('refund', ['999999', '--reason', '用户取消订单']);
    expect({ code: unknown.code, answer: JSON.parse(unknown.out) }).toEqual({ code: 1, answer: { error: 'ORDER_NOT_FOUND', message: '订单不存在' } });
    expect((await script('refund', ['503'])).code).toBe(2);
    const sweep = await script('sweep');
    expect(sweep.code).toBe(0);
    expect(JSON.parse(sweep.out)).toMatchObject({ checked: expect.any(Number), failed: 0 });
  });

  it('npm run shop sends a command to shopCommand: 0 when done, 1 when refused, 2 for a usage error', async () => {
    const credit = JSON.stringify({ user_id: 1002, points: 100, entry_id: 'e2e-signin', reason: '签到' });
    const done = await script('shop', ['credit-points', credit]);
    expect({ code: done.code, answer: JSON.parse(done.out) }).toEqual({ code: 0, answer: { ok: true, changed: true, user_id: 1002, entry_id: 'e2e-signin' } });
    const refused = await script('shop', ['debit-points', JSON.stringify({ user_id: 1002, points: 10_000_000, entry_id: 'e2e-big', reason: '兑换' })]);
    expect({ code: refused.code, error: JSON.parse(refused.out).error }).toEqual({ code: 1, error: 'INTEGRAL_NOT_ENOUGH' });
    expect((await script('shop', ['credit-points', 'not json'])).code).toBe(2);
  });

  it("the shop's events: delivered signed by dispatchEvents, listed while the shop is down, redelivered by hand", async () => {
    // What the earlier tests' changes emitted goes first (one order's events go in order: an older
    // undelivered event of order 505 would hold back the one made here), once it may (SETTLE_MS old).
    await sleep(SETTLE_MS);
    expect(await invokeLocalFunction('dispatchEvents', {}, lambdaEndpoint)).toMatchObject({ retrying: 0, dead: 0 });
    // serverless offline runs dispatchEvents every minute, as AWS would: the receiver is down at first,
    // so the events stay undelivered whenever that run comes.
    receiver.failNext(1_000);
    await stack.seed(JSON.parse(readFileSync(DEMO_FIXTURE_FILE, 'utf8')));
    const points = DEMO_REQUESTS.find((r) => r.expect === 'points');
    if (!points) throw new Error('the demo has no points-only curl');
    const paid = await post('/order/pay', { 'content-type': 'application/json', token: points.token }, JSON.stringify(points.body));
    const paidId = `evt_order_paid_${paid.body.data.out_trade_no}`;
    const order = { order_id: 990_001, user_id: 1002, goods_name: '保温杯', goods_price: '10.00', free_shipping: true };
    expect((await script('shop', ['upsert-order', JSON.stringify(order)])).code).toBe(0);
    expect((await script('shop', ['close-order', JSON.stringify({ order_id: 990_001 })])).code).toBe(0);
    // The schedule's invocation, through serverless offline's Lambda endpoint: refused by the receiver.
    await sleep(SETTLE_MS);
    expect(await invokeLocalFunction('dispatchEvents', {}, lambdaEndpoint)).toMatchObject({ delivered: 0, dead: 0 });

    const listed = await script('shop', ['events']);
    expect(listed.code).toBe(0);
    const pending = JSON.parse(listed.out).events as { id: string; type: string; status: string }[];
    const ours = pending.filter((e) => [paidId, 'evt_order_closed_990001'].includes(e.id));
    expect(ours).toHaveLength(2);
    expect(ours).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: paidId,
          type: 'order.paid',
          status: 'pending',
          attempts: 1,
          last_attempt: expect.objectContaining({ results: { webhook: 'http 500' } }),
        }),
        expect.objectContaining({ id: 'evt_order_closed_990001', type: 'order.closed', status: 'pending', attempts: 1 }),
      ]),
    );

    // The shop is back: sent again now by hand rather than at the next retry.
    receiver.failNext(0);
    const again = await script('shop', ['redeliver', paidId]);
    expect({ code: again.code, event: JSON.parse(again.out).event }).toMatchObject({ code: 0, event: { id: paidId, status: 'delivered', attempts: 2 } });
    expect(receiver.received.filter((e) => e.id === paidId)).toEqual([
      expect.objectContaining({ type: 'order.paid', data: expect.objectContaining({ order_id: points.body.order_id }) }),
    ]);
    expect(JSON.parse((await script('shop', ['events'])).out).events.map((e: { id: string }) => e.id)).not.toContain(paidId);
    const unknown = await script('shop', ['redeliver', 'evt_order_paid_nope']);
    expect({ code: unknown.code, error: JSON.parse(unknown.out).error }).toEqual({ code: 1, error: 'EVENT_NOT_FOUND' });
  }, 120_000); // five scripts, each a fresh tsx process
});
