/**
 * WeChat Pay v3 refunds at the sandbox, through wechatpay-node-v3 (`refunds`, `find_refunds`) and its
 * signed HTTP: the refund object, its states, the REFUND.* notification, and every failure a test can ask for.
 */
import { createSign, randomBytes } from 'node:crypto';
import type WxPay from 'wechatpay-node-v3';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import { type RecordingMerchant, startRecordingMerchant } from '../../support/sandboxMerchant';
import { decryptWechatResource, wechatAnswerSignatureValid, wechatErrorOf, wechatSandboxClient, wechatSignatureValid } from '../../support/sandboxWechatClient';
import type { WechatHttpResult } from '../../support/sandboxWechatHttp';

const RFC3339_BEIJING = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/;
const DAY_MS = 24 * 60 * 60 * 1000;

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let merchant: RecordingMerchant;
let pay: WxPay;
let seq = 0;
const nextNo = (prefix: string) => `${prefix}_${Date.now()}_${(seq += 1)}`;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds, refunds: { settleAfterMs: 50 } });
  merchant = await startRecordingMerchant();
  pay = wechatSandboxClient(creds.wechat, gateway.url);
});
afterAll(async () => {
  await gateway.close();
  await merchant.close();
});
beforeEach(() => {
  merchant.received.length = 0;
});
afterEach(async () => {
  await gateway.refundsSettled();
  gateway.refundSettings({ wechatMode: 'delayed', settleAfterMs: 50 });
});

/** A WeChat trade of `total` fen, prepaid and paid; returns its numbers. */
async function paidTrade(total = 1000): Promise<{ outTradeNo: string; transactionId: string }> {
  const outTradeNo = nextNo('WXR');
  const prepay = await pay.transactions_app({
    description: '退款测试',
    out_trade_no: outTradeNo,
    notify_url: `${merchant.url}/wechat/pay`,
    amount: { total, currency: 'CNY' },
  });
  expect(prepay.status).toBe(200);
  return { outTradeNo, transactionId: gateway.pay(outTradeNo).transactionId };
}

function refundRequest(outTradeNo: string, outRefundNo: string, refund: number, total = 1000, extra: Record<string, unknown> = {}) {
  return {
    out_trade_no: outTradeNo,
    out_refund_no: outRefundNo,
    reason: '商品已售完',
    notify_url: `${merchant.url}/wechat/refund`,
    amount: { refund, total, currency: 'CNY' },
    ...extra,
  };
}

const refunds = (params: ReturnType<typeof refundRequest>): Promise<WechatHttpResult> => pay.refunds(params as Parameters<WxPay['refunds']>[0]);
const findRefund = (outRefundNo: string): Promise<WechatHttpResult> => pay.find_refunds(outRefundNo);
const tradeState = async (outTradeNo: string) => ((await pay.query({ out_trade_no: outTradeNo })) as WechatHttpResult).data.trade_state as string;

/** The refund notifications the merchant received, verified and opened. */
function refundNotifications() {
  return merchant.receivedOn('/wechat/refund').map((received) => {
    expect(wechatSignatureValid(creds.wechat, received.headers, received.body)).toBe(true);
    const envelope = JSON.parse(received.body);
    return { envelope, resource: JSON.parse(decryptWechatResource(creds.wechat.apiv3_key, envelope.resource)) };
  });
}

describe('POST /v3/refund/domestic/refunds (wechatpay-node-v3 refunds)', () => {
  it('answers the signed refund object, PROCESSING; it turns SUCCESS a moment later and WeChat notifies REFUND.SUCCESS', async () => {
    const { outTradeNo, transactionId } = await paidTrade(1000);
    const outRefundNo = nextNo('RF');
    gateway.refundSettings({ settleAfterMs: 1500 });
    const created = await refunds(refundRequest(outTradeNo, outRefundNo, 300));
    expect(created.status).toBe(200);
    expect(wechatAnswerSignatureValid(creds.wechat, created)).toBe(true);
    expect(created.headers?.['wechatpay-serial']).toBe(creds.wechat.platform_serial);
    expect(created.data).toEqual({
      amount: {
        currency: 'CNY',
        discount_refund: 0,
        payer_refund: 300,
        payer_total: 1000,
        refund: 300,
        settlement_refund: 300,
        settlement_total: 1000,
        total: 1000,
      },
      channel: 'ORIGINAL',
      create_time: expect.stringMatching(RFC3339_BEIJING),
      funds_account: 'UNSETTLED',
      out_refund_no: outRefundNo,
      out_trade_no: outTradeNo,
      promotion_detail: [],
      refund_id: expect.stringMatching(/^50\d{27}$/),
      status: 'PROCESSING',
      transaction_id: transactionId,
      user_received_account: '支付用户零钱',
    });
    // Keys in WeChat's order, as the signed bytes show them.
    expect(Object.keys(JSON.parse(created.rawBody!))).toEqual(Object.keys(created.data).sort());
    const processing = await findRefund(outRefundNo);
    expect(processing.data).toEqual(created.data);

    await gateway.refundsSettled();
    const settled = await findRefund(outRefundNo);
    expect(wechatAnswerSignatureValid(creds.wechat, settled)).toBe(true);
    expect(settled.data).toEqual({ ...created.data, status: 'SUCCESS', success_time: expect.stringMatching(RFC3339_BEIJING) });

    const [notification, ...more] = refundNotifications();
    expect(more).toEqual([]);
    expect(Object.keys(notification.envelope)).toEqual(['id', 'create_time', 'resource_type', 'event_type', 'summary', 'resource']);
    expect(notification.envelope).toMatchObject({
      resource_type: 'encrypt-resource',
      event_type: 'REFUND.SUCCESS',
      summary: '退款成功',
      resource: { original_type: 'refund', algorithm: 'AEAD_AES_256_GCM', associated_data: 'refund', nonce: expect.stringMatching(/^[A-Za-z0-9]{12}$/) },
    });
    expect(notification.resource).toEqual({
      mchid: creds.wechat.mchid,
      out_trade_no: outTradeNo,
      transaction_id: transactionId,
      out_refund_no: outRefundNo,
      refund_id: created.data.refund_id,
      refund_status: 'SUCCESS',
      success_time: settled.data.success_time,
      user_received_account: '支付用户零钱',
      amount: { total: 1000, refund: 300, payer_total: 1000, payer_refund: 300 },
    });
    expect(Object.keys(notification.resource)).toEqual([
      'mchid',
      'out_trade_no',
      'transaction_id',
      'out_refund_no',
      'refund_id',
      'refund_status',
      'success_time',
      'user_received_account',
      'amount',
    ]);
    expect(gateway.refunds(outTradeNo)).toEqual([
      expect.objectContaining({
        channel: 'wechat',
        outRefundNo,
        status: 'SUCCESS',
        amountFen: 300,
        reason: '商品已售完',
        notification: expect.objectContaining({ url: `${merchant.url}/wechat/refund`, status: 204 }),
      }),
    ]);
  });

  it("answers SUCCESS at once in 'immediate' mode, and notifies right after", async () => {
    gateway.refundSettings({ wechatMode: 'immediate', settleAfterMs: 60_000 });
    const { outTradeNo } = await paidTrade(500);
    const outRefundNo = nextNo('RF');
    const created = await refunds(refundRequest(outTradeNo, outRefundNo, 500, 500));
    expect(created.data).toMatchObject({ status: 'SUCCESS', success_time: expect.stringMatching(RFC3339_BEIJING) });
    await gateway.refundsSettled();
    expect(refundNotifications().map((n) => n.envelope.event_type)).toEqual(['REFUND.SUCCESS']);
  });

  it('makes the same out_refund_no the same refund: answered again, never refunded twice; another amount is 400 INVALID_REQUEST', async () => {
    const { outTradeNo } = await paidTrade(1000);
    const outRefundNo = nextNo('RF');
    const first = await refunds(refundRequest(outTradeNo, outRefundNo, 400));
    const again = await refunds(refundRequest(outTradeNo, outRefundNo, 400));
    expect(again.status).toBe(200);
    expect(again.data.refund_id).toBe(first.data.refund_id);
    await gateway.refundsSettled();
    const afterSettling = await refunds(refundRequest(outTradeNo, outRefundNo, 400));
    expect(afterSettling.data).toMatchObject({ refund_id: first.data.refund_id, status: 'SUCCESS' });
    expect(gateway.refunds(outTradeNo)).toHaveLength(1);
    expect(gateway.trade(outTradeNo)?.refundedFen).toBe(400);
    expect(refundNotifications()).toHaveLength(1);

    const otherAmount = await refunds(refundRequest(outTradeNo, outRefundNo, 401));
    expect(otherAmount.status).toBe(400);
    expect(wechatErrorOf(otherAmount).code).toBe('INVALID_REQUEST');
    expect(wechatAnswerSignatureValid(creds.wechat, otherAmount)).toBe(true);
    const { outTradeNo: otherTrade } = await paidTrade(1000);
    const otherTradeSameNumber = await refunds(refundRequest(otherTrade, outRefundNo, 400));
    expect(wechatErrorOf(otherTradeSameNumber).code).toBe('INVALID_REQUEST');
    expect(gateway.refunds(otherTrade)).toEqual([]);
  });

  it('refunds in parts: the trade stays SUCCESS until all of it is refunded, then is REFUND; nothing more can be refunded', async () => {
    const { outTradeNo } = await paidTrade(1000);
    await refunds(refundRequest(outTradeNo, nextNo('RF'), 600));
    await gateway.refundsSettled();
    expect(await tradeState(outTradeNo)).toBe('SUCCESS');

    const tooMuch = await refunds(refundRequest(outTradeNo, nextNo('RF'), 401));
    expect(tooMuch.status).toBe(400);
    expect(wechatErrorOf(tooMuch)).toEqual({ code: 'INVALID_REQUEST', message: '申请退款金额超过订单可退金额' });

    await refunds(refundRequest(outTradeNo, nextNo('RF'), 400));
    await gateway.refundsSettled();
    const query: WechatHttpResult = await pay.query({ out_trade_no: outTradeNo });
    expect(query.data).toMatchObject({ trade_state: 'REFUND', trade_state_desc: '转入退款', amount: { total: 1000, payer_total: 1000 } });
    expect(wechatAnswerSignatureValid(creds.wechat, query)).toBe(true);

    const more = await refunds(refundRequest(outTradeNo, nextNo('RF'), 1));
    expect(wechatErrorOf(more)).toEqual({ code: 'INVALID_REQUEST', message: '订单已全额退款' });
    expect(gateway.trade(outTradeNo)?.refundedFen).toBe(1000);
  });

  it('counts a PROCESSING refund against what is left to refund', async () => {
    gateway.refundSettings({ settleAfterMs: 1000 });
    const { outTradeNo } = await paidTrade(1000);
    expect((await refunds(refundRequest(outTradeNo, nextNo('RF'), 1000))).data.status).toBe('PROCESSING');
    const second = await refunds(refundRequest(outTradeNo, nextNo('RF'), 1));
    expect(wechatErrorOf(second).code).toBe('INVALID_REQUEST');
  });

  it('finds the trade by transaction_id too (it wins over out_trade_no)', async () => {
    const { outTradeNo, transactionId } = await paidTrade(800);
    const outRefundNo = nextNo('RF');
    const byId = await pay.refunds({
      transaction_id: transactionId,
      out_trade_no: 'SOME_OTHER_NO',
      out_refund_no: outRefundNo,
      amount: { refund: 800, total: 800, currency: 'CNY' },
    });
    expect(byId.status).toBe(200);
    expect(byId.data).toMatchObject({ out_trade_no: outTradeNo, transaction_id: transactionId });
    await gateway.refundsSettled();
    // No notify_url: WeChat would notify the URL set on the merchant platform, which the sandbox has not.
    expect(gateway.refunds(outTradeNo)[0].notification).toBeUndefined();
    expect(merchant.received).toEqual([]);
  });

  it('refuses a trade it does not know, or one not paid, with 404 RESOURCE_NOT_EXISTS; a wrong total with 400 INVALID_REQUEST', async () => {
    const unknown = await refunds(refundRequest('NEVER_CREATED_R1', nextNo('RF'), 1));
    expect(unknown.status).toBe(404);
    expect(wechatErrorOf(unknown)).toEqual({ code: 'RESOURCE_NOT_EXISTS', message: '订单不存在' });
    expect(wechatAnswerSignatureValid(creds.wechat, unknown)).toBe(true);
    const byUnknownId = await pay.refunds({
      transaction_id: '4200000000000000000000000000',
      out_refund_no: nextNo('RF'),
      amount: { refund: 1, total: 1, currency: 'CNY' },
    });
    expect(byUnknownId.status).toBe(404);

    const outTradeNo = nextNo('WXR');
    await pay.transactions_app({ description: 'x', out_trade_no: outTradeNo, notify_url: `${merchant.url}/wechat/pay`, amount: { total: 1000 } });
    const unpaid = await refunds(refundRequest(outTradeNo, nextNo('RF'), 1));
    expect(unpaid.status).toBe(404);
    expect(wechatErrorOf(unpaid).code).toBe('RESOURCE_NOT_EXISTS');
    await pay.close(outTradeNo);
    expect((await refunds(refundRequest(outTradeNo, nextNo('RF'), 1))).status).toBe(404);

    const paid = await paidTrade(1000);
    const wrongTotal = await refunds(refundRequest(paid.outTradeNo, nextNo('RF'), 1, 999));
    expect(wrongTotal.status).toBe(400);
    expect(wechatErrorOf(wrongTotal).code).toBe('INVALID_REQUEST');
    expect(gateway.refunds(paid.outTradeNo)).toEqual([]);
  });

  it('refuses to refund a payment more than a year old: 400 INVALID_REQUEST 超期订单不允许退款', async () => {
    const old = await paidTrade(1000);
    gateway.backdatePayment(old.outTradeNo, new Date(Date.now() - 366 * DAY_MS));
    const refused = await refunds(refundRequest(old.outTradeNo, nextNo('RF'), 1000));
    expect(refused.status).toBe(400);
    expect(wechatErrorOf(refused)).toEqual({ code: 'INVALID_REQUEST', message: '超期订单不允许退款' });
    expect(gateway.refunds(old.outTradeNo)).toEqual([]);

    const almost = await paidTrade(1000);
    gateway.backdatePayment(almost.outTradeNo, new Date(Date.now() - 364 * DAY_MS));
    expect((await refunds(refundRequest(almost.outTradeNo, nextNo('RF'), 1000))).status).toBe(200);
  });

  it.each([
    ['no amount', { amount: undefined }],
    ['amount.refund zero', { amount: { refund: 0, total: 1000, currency: 'CNY' } }],
    ['amount.refund fractional', { amount: { refund: 1.5, total: 1000, currency: 'CNY' } }],
    ['amount.total as a string', { amount: { refund: 1, total: '1000', currency: 'CNY' } }],
    ['no currency', { amount: { refund: 1, total: 1000 } }],
    ['currency not CNY', { amount: { refund: 1, total: 1000, currency: 'USD' } }],
    ['out_refund_no with a dot', { out_refund_no: 'RF.1' }],
    ['out_refund_no of 65 characters', { out_refund_no: 'R'.repeat(65) }],
    ['neither out_trade_no nor transaction_id', { out_trade_no: undefined }],
    ['notify_url not http(s)', { notify_url: 'ftp://paynow.example.com/refund' }],
    ['reason over 80 characters', { reason: '退'.repeat(81) }],
    ['funds_account not AVAILABLE', { funds_account: 'UNSETTLED' }],
  ])('refuses %s with 400 PARAM_ERROR', async (_name, change) => {
    const { outTradeNo } = await paidTrade(1000);
    const result = await refunds({ ...refundRequest(outTradeNo, nextNo('RF'), 1), ...change } as ReturnType<typeof refundRequest>);
    expect(result.status).toBe(400);
    expect(wechatErrorOf(result).code).toBe('PARAM_ERROR');
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('takes funds_account AVAILABLE and shows it', async () => {
    const { outTradeNo } = await paidTrade(1000);
    const result = await refunds(refundRequest(outTradeNo, nextNo('RF'), 1, 1000, { funds_account: 'AVAILABLE' }));
    expect(result.data.funds_account).toBe('AVAILABLE');
  });

  it('refuses a request that is not signed by the merchant: 401 SIGN_ERROR, nothing refunded', async () => {
    const { outTradeNo } = await paidTrade(1000);
    const body = JSON.stringify(refundRequest(outTradeNo, nextNo('RF'), 1000));
    const unsigned = await fetch(`${gateway.url}/v3/refund/domestic/refunds`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { code: string }).code).toBe('SIGN_ERROR');

    // Signed, then a different body sent.
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString('hex');
    const signature = createSign('RSA-SHA256')
      .update(`POST\n/v3/refund/domestic/refunds\n${timestamp}\n${nonce}\n${body}\n`)
      .sign(creds.wechat.merchant_private_key_pem, 'base64');
    const authorization = `WECHATPAY2-SHA256-RSA2048 mchid="${creds.wechat.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${creds.wechat.merchant_serial}"`;
    const swapped = await fetch(`${gateway.url}/v3/refund/domestic/refunds`, {
      method: 'POST',
      headers: { Authorization: authorization, 'Content-Type': 'application/json' },
      body: body.replace('"refund":1000', '"refund":999'),
    });
    expect(swapped.status).toBe(401);
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });
});

describe('GET /v3/refund/domestic/refunds/{out_refund_no} (wechatpay-node-v3 find_refunds)', () => {
  it('answers 404 RESOURCE_NOT_EXISTS, signed, for a refund it does not know', async () => {
    const result = await findRefund('NEVER_REFUNDED_1');
    expect(result.status).toBe(404);
    expect(wechatErrorOf(result).code).toBe('RESOURCE_NOT_EXISTS');
    expect(wechatAnswerSignatureValid(creds.wechat, result)).toBe(true);
  });
});

describe('WeChat refund failures on demand', () => {
  it.each([
    ['abnormal', 'ABNORMAL', 'REFUND.ABNORMAL', '退款异常'],
    ['closed', 'CLOSED', 'REFUND.CLOSED', '退款关闭'],
  ] as const)(
    "failNextRefund('wechat', '%s'): PROCESSING, then %s with its notification; nothing reaches the payer",
    async (how, status, eventType, summary) => {
      const { outTradeNo } = await paidTrade(1000);
      gateway.failNextRefund('wechat', how);
      const outRefundNo = nextNo('RF');
      expect((await refunds(refundRequest(outTradeNo, outRefundNo, 1000))).data.status).toBe('PROCESSING');
      await gateway.refundsSettled();
      const settled = await findRefund(outRefundNo);
      expect(settled.data.status).toBe(status);
      expect(settled.data.success_time).toBeUndefined();
      const [notification] = refundNotifications();
      expect(notification.envelope).toMatchObject({ event_type: eventType, summary });
      expect(notification.resource).toMatchObject({ out_refund_no: outRefundNo, refund_status: status });
      expect(notification.resource.success_time).toBeUndefined();
      expect(await tradeState(outTradeNo)).toBe('SUCCESS');
      expect(gateway.trade(outTradeNo)?.refundedFen).toBeUndefined();
      if (how === 'abnormal') {
        // Its money waits at WeChat (not refundable again) until the merchant sends it on; then the same refund succeeds.
        expect((await refunds(refundRequest(outTradeNo, nextNo('RF'), 1000))).status).toBe(400);
        gateway.resumeAbnormalRefund(outRefundNo);
        expect((await findRefund(outRefundNo)).data.status).toBe('PROCESSING');
        await gateway.refundsSettled();
        expect((await findRefund(outRefundNo)).data).toMatchObject({ status: 'SUCCESS', success_time: expect.any(String) });
        expect(refundNotifications().map((n) => [n.envelope.event_type, n.resource.out_refund_no])).toEqual([
          ['REFUND.ABNORMAL', outRefundNo],
          ['REFUND.SUCCESS', outRefundNo],
        ]);
      } else {
        // A closed refund gives its amount back: the next one (another number) goes through, for the whole amount.
        expect((await refunds(refundRequest(outTradeNo, nextNo('RF'), 1000))).status).toBe(200);
        await gateway.refundsSettled();
      }
      expect(await tradeState(outTradeNo)).toBe('REFUND');
      expect(gateway.trade(outTradeNo)?.refundedFen).toBe(1000);
    },
  );

  it('only an ABNORMAL refund can be sent on: another, or an unknown number, is refused', async () => {
    const { outTradeNo } = await paidTrade(1000);
    const outRefundNo = nextNo('RF');
    await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    expect(() => gateway.resumeAbnormalRefund(outRefundNo)).toThrow(/is PROCESSING, not ABNORMAL/);
    expect(() => gateway.resumeAbnormalRefund('NO_SUCH_REFUND')).toThrow(/no WeChat refund NO_SUCH_REFUND/);
    await gateway.refundsSettled();
  });

  it("failNextRefund('wechat', 'silent'): the refund succeeds but its notification is never sent", async () => {
    const { outTradeNo } = await paidTrade(1000);
    gateway.failNextRefund('wechat', 'silent');
    const outRefundNo = nextNo('RF');
    await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    await gateway.refundsSettled();
    expect((await findRefund(outRefundNo)).data.status).toBe('SUCCESS');
    expect(merchant.received).toEqual([]);
    expect(gateway.refunds(outTradeNo)[0].notification).toBeUndefined();
  });

  it("failNextRefund('wechat', 'balance', 2): 403 NOT_ENOUGH twice, nothing refunded; then the same number goes through", async () => {
    const { outTradeNo } = await paidTrade(1000);
    gateway.failNextRefund('wechat', 'balance', 2);
    const outRefundNo = nextNo('RF');
    for (let i = 0; i < 2; i += 1) {
      const refused = await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
      expect(refused.status).toBe(403);
      expect(wechatErrorOf(refused)).toEqual({ code: 'NOT_ENOUGH', message: '基本账户余额不足，请充值后重新发起' });
      expect(gateway.refunds(outTradeNo)).toEqual([]);
    }
    expect((await refunds(refundRequest(outTradeNo, outRefundNo, 1000))).status).toBe(200);
  });

  it("failNext('wechat.refund', 1, '500'): HTTP 500 SYSTEM_ERROR and nothing happens; the retry refunds", async () => {
    const { outTradeNo } = await paidTrade(1000);
    gateway.failNext('wechat.refund', 1, '500');
    const outRefundNo = nextNo('RF');
    const failed = await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    expect(failed.status).toBe(500);
    expect(wechatErrorOf(failed).code).toBe('SYSTEM_ERROR');
    expect(gateway.refunds(outTradeNo)).toEqual([]);
    expect((await findRefund(outRefundNo)).status).toBe(404);
    expect((await refunds(refundRequest(outTradeNo, outRefundNo, 1000))).status).toBe(200);
  });

  it("failNext('wechat.refund', 1, 'drop'): the refund is made but the caller sees no answer; the retry gets that refund", async () => {
    const { outTradeNo } = await paidTrade(1000);
    gateway.failNext('wechat.refund', 1, 'drop');
    const outRefundNo = nextNo('RF');
    const dropped = await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    expect(dropped.status).toBeUndefined();
    expect(dropped.errRaw?.code).toEqual(expect.any(String));
    const [made] = gateway.refunds(outTradeNo);
    expect(made).toMatchObject({ outRefundNo, amountFen: 1000 });
    const retried = await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    expect(retried.data.refund_id).toBe(made.refundId);
    await gateway.refundsSettled();
    expect(gateway.refunds(outTradeNo)).toHaveLength(1);
    expect(gateway.trade(outTradeNo)?.refundedFen).toBe(1000);
    expect(refundNotifications()).toHaveLength(1);
  });

  it("failNext('wechat.refundQuery'): the query answers 500 once", async () => {
    const { outTradeNo } = await paidTrade(1000);
    const outRefundNo = nextNo('RF');
    await refunds(refundRequest(outTradeNo, outRefundNo, 1000));
    gateway.failNext('wechat.refundQuery');
    expect((await findRefund(outRefundNo)).status).toBe(500);
    expect((await findRefund(outRefundNo)).status).toBe(200);
  });

  it('records a notification the merchant could not be reached for', async () => {
    const { outTradeNo } = await paidTrade(1000);
    await refunds(refundRequest(outTradeNo, nextNo('RF'), 1000, 1000, { notify_url: 'http://127.0.0.1:1/wechat/refund' }));
    await gateway.refundsSettled();
    expect(gateway.refunds(outTradeNo)[0]).toMatchObject({
      status: 'SUCCESS',
      notification: { url: 'http://127.0.0.1:1/wechat/refund', error: expect.any(String) },
    });
  });

  it('refuses refund failures WeChat does not have, and bad counts', () => {
    expect(() => gateway.failNextRefund('wechat', 'sideways' as never)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => gateway.failNextRefund('wechat', 'closed', 0)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  });
});

describe('closing the gateway with refunds pending', () => {
  it('cancels their settlement and notification', async () => {
    const own = await startSandboxGateway({ credentials: creds, refunds: { settleAfterMs: 60_000 } });
    const client = wechatSandboxClient(creds.wechat, own.url);
    const outTradeNo = nextNo('WXR');
    await client.transactions_app({ description: 'x', out_trade_no: outTradeNo, notify_url: `${merchant.url}/wechat/pay`, amount: { total: 100 } });
    own.pay(outTradeNo);
    await client.refunds({
      out_trade_no: outTradeNo,
      out_refund_no: nextNo('RF'),
      notify_url: `${merchant.url}/wechat/refund`,
      amount: { refund: 100, total: 100, currency: 'CNY' },
    });
    await own.close();
    await own.refundsSettled();
    expect(own.refunds(outTradeNo)[0].status).toBe('PROCESSING');
    expect(merchant.received).toEqual([]);
  });
});
