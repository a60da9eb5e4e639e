/**
 * The simulator's refund controls over HTTP (/sandbox/...), for a stack driven from outside the process
 * (`npm start`): each does what the gateway handle's method of the same name does.
 */
import { AlipaySdk } from 'alipay-sdk';
import type WxPay from 'wechatpay-node-v3';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import { beijingDateTime } from '../../support/sandboxBeijingTime';
import { wechatErrorOf, wechatSandboxClient } from '../../support/sandboxWechatClient';
import type { WechatHttpResult } from '../../support/sandboxWechatHttp';

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let pay: WxPay;
let seq = 0;
const nextNo = (prefix: string) => `${prefix}_${Date.now()}_${(seq += 1)}`;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds, refunds: { settleAfterMs: 10 } });
  pay = wechatSandboxClient(creds.wechat, gateway.url);
});
afterAll(async () => {
  await gateway.close();
});

async function post(path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
async function get(path: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${gateway.url}${path}`);
  return { status: res.status, json: await res.json() };
}

async function paidWechatTrade(total = 100): Promise<string> {
  const outTradeNo = nextNo('SIM');
  await pay.transactions_app({ description: 'x', out_trade_no: outTradeNo, notify_url: 'http://127.0.0.1:9/n', amount: { total } });
  gateway.pay(outTradeNo);
  return outTradeNo;
}
const refund = (outTradeNo: string, outRefundNo = nextNo('RF'), amount = 100): Promise<WechatHttpResult> =>
  pay.refunds({ out_trade_no: outTradeNo, out_refund_no: outRefundNo, amount: { refund: amount, total: amount, currency: 'CNY' } });

describe('simulator refund controls', () => {
  it('GET /sandbox/trades/{no}/refunds lists the refunds of a trade', async () => {
    const outTradeNo = await paidWechatTrade();
    const outRefundNo = nextNo('RF');
    await refund(outTradeNo, outRefundNo);
    await gateway.refundsSettled();
    expect(await get(`/sandbox/trades/${outTradeNo}/refunds`)).toEqual({
      status: 200,
      json: [expect.objectContaining({ channel: 'wechat', outTradeNo, outRefundNo, status: 'SUCCESS', amountFen: 100 })],
    });
    expect(await get('/sandbox/trades/NEVER_CREATED_S1/refunds')).toEqual({ status: 200, json: [] });
  });

  it('POST /sandbox/fail-next fails a gateway route; a route or failure it does not know is 400', async () => {
    const outTradeNo = await paidWechatTrade();
    expect(await post('/sandbox/fail-next', { route: 'wechat.refund', how: '500', times: 1 })).toEqual({
      status: 200,
      json: { route: 'wechat.refund', times: 1, how: '500' },
    });
    const failed = await refund(outTradeNo);
    expect(failed.status).toBe(500);
    expect(gateway.refunds(outTradeNo)).toEqual([]);
    expect((await post('/sandbox/fail-next', { route: 'wechat.refunds' })).json).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await post('/sandbox/fail-next', { route: 'wechat.refund', how: 'slow' })).status).toBe(400);
    expect((await post('/sandbox/fail-next', { route: 'wechat.refund', times: 0 })).status).toBe(400);
    expect((await post('/sandbox/fail-next', '[1]')).status).toBe(400);
  });

  it('POST /sandbox/refunds/fail-next makes the next refund fail as asked; a failure the channel lacks is 400', async () => {
    const outTradeNo = await paidWechatTrade();
    expect(await post('/sandbox/refunds/fail-next', { channel: 'wechat', how: 'balance' })).toEqual({
      status: 200,
      json: { channel: 'wechat', how: 'balance', times: 1 },
    });
    expect(wechatErrorOf(await refund(outTradeNo)).code).toBe('NOT_ENOUGH');
    expect((await post('/sandbox/refunds/fail-next', { channel: 'alipay', how: 'abnormal' })).status).toBe(400);
    expect((await post('/sandbox/refunds/fail-next', { channel: 'wechat', how: 'balance', times: 'twice' })).status).toBe(400);
  });

  it('POST /sandbox/refunds/{no}/resume-abnormal sends an ABNORMAL refund on: it succeeds; any other refund is 400, an unknown one 404', async () => {
    const outTradeNo = await paidWechatTrade();
    const outRefundNo = nextNo('RF');
    gateway.failNextRefund('wechat', 'abnormal');
    await refund(outTradeNo, outRefundNo);
    await gateway.refundsSettled();
    expect(gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ outRefundNo, status: 'ABNORMAL' })]);
    expect(await post(`/sandbox/refunds/${outRefundNo}/resume-abnormal`)).toEqual({ status: 200, json: { out_refund_no: outRefundNo, status: 'PROCESSING' } });
    await gateway.refundsSettled();
    expect(gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ outRefundNo, status: 'SUCCESS' })]);
    expect(await post(`/sandbox/refunds/${outRefundNo}/resume-abnormal`)).toMatchObject({ status: 400, json: { code: 'INVALID_REQUEST' } });
    expect(await post('/sandbox/refunds/NO_SUCH_RF/resume-abnormal')).toMatchObject({ status: 404, json: { code: 'TRADE_NOT_FOUND' } });
  });

  it('GET and POST /sandbox/refunds/settings read and change the refund settings', async () => {
    expect(await get('/sandbox/refunds/settings')).toEqual({ status: 200, json: { wechatMode: 'delayed', settleAfterMs: 10, alipayNotify: true } });
    expect(await post('/sandbox/refunds/settings', { wechatMode: 'immediate' })).toEqual({
      status: 200,
      json: { wechatMode: 'immediate', settleAfterMs: 10, alipayNotify: true },
    });
    const outTradeNo = await paidWechatTrade();
    expect((await refund(outTradeNo)).data.status).toBe('SUCCESS');
    expect(await post('/sandbox/refunds/settings', { settleAfterMs: -5 })).toMatchObject({ status: 400, json: { code: 'INVALID_REQUEST' } });
    expect(gateway.refundSettings({ wechatMode: 'delayed' })).toEqual({ wechatMode: 'delayed', settleAfterMs: 10, alipayNotify: true });
  });

  it('POST /sandbox/trades/{no}/backdate moves the payment: a year back, WeChat refuses to refund it', async () => {
    const outTradeNo = await paidWechatTrade();
    const backdated = await post(`/sandbox/trades/${outTradeNo}/backdate`, { paid_at: '2020-01-01T00:00:00+08:00' });
    expect(backdated).toMatchObject({ status: 200, json: { outTradeNo, paidAt: '2019-12-31T16:00:00.000Z' } });
    expect(wechatErrorOf(await refund(outTradeNo))).toEqual({ code: 'INVALID_REQUEST', message: '超期订单不允许退款' });
    expect(await post(`/sandbox/trades/${outTradeNo}/backdate`, {})).toMatchObject({ status: 400, json: { code: 'INVALID_REQUEST' } });
    expect(await post(`/sandbox/trades/${outTradeNo}/backdate`, { paid_at: 'yesterday' })).toMatchObject({ status: 400, json: { code: 'INVALID_REQUEST' } });
    expect(await post('/sandbox/trades/NEVER_CREATED_S2/backdate', { paid_at: '2020-01-01T00:00:00Z' })).toMatchObject({
      status: 404,
      json: { code: 'TRADE_NOT_FOUND' },
    });
  });

  it('POST /sandbox/trades/{no}/finish finishes a paid Alipay trade only', async () => {
    const sdk = new AlipaySdk({
      appId: creds.alipay.app_id,
      privateKey: creds.alipay.app_private_key_pem,
      alipayPublicKey: creds.alipay.alipay_public_key_pem,
    });
    const outTradeNo = nextNo('SIM');
    const orderString = sdk.sdkExecute('alipay.trade.app.pay', { bizContent: { outTradeNo, totalAmount: '1.00', subject: 'x' }, timestamp: beijingDateTime() });
    expect((await post('/sandbox/alipay/register', orderString)).status).toBe(200);
    expect(await post(`/sandbox/trades/${outTradeNo}/finish`)).toMatchObject({ status: 409, json: { code: 'TRADE_NOT_PAID' } });
    gateway.pay(outTradeNo);
    expect(await post(`/sandbox/trades/${outTradeNo}/finish`)).toMatchObject({ status: 200, json: { outTradeNo, finishedAt: expect.any(String) } });
    expect(gateway.trade(outTradeNo)?.finishedAt).toEqual(expect.any(String));

    const wechatTrade = await paidWechatTrade();
    expect(await post(`/sandbox/trades/${wechatTrade}/finish`)).toMatchObject({ status: 404, json: { code: 'TRADE_NOT_FOUND' } });
  });
});
