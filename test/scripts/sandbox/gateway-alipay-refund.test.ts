/**
 * Alipay refunds at the sandbox, through alipay-sdk `exec(..., { validateSign: true })`: alipay.trade.refund,
 * alipay.trade.fastpay.refund.query, what they do to the trade, the trade_status_sync notification after a
 * refund, and every failure a test can ask for.
 */
import { generateKeyPairSync } from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import { alipayGatewayUrl, generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import { beijingDateTime } from '../../support/sandboxBeijingTime';
import { type RecordingMerchant, startRecordingMerchant } from '../../support/sandboxMerchant';

const BEIJING_DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let merchant: RecordingMerchant;
let sdk: AlipaySdk;
let seq = 0;
const nextNo = (prefix: string) => `${prefix}_${Date.now()}_${(seq += 1)}`;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds, refunds: { settleAfterMs: 20 } });
  merchant = await startRecordingMerchant();
  sdk = new AlipaySdk({
    appId: creds.alipay.app_id,
    privateKey: creds.alipay.app_private_key_pem,
    alipayPublicKey: creds.alipay.alipay_public_key_pem,
    gateway: alipayGatewayUrl(gateway.url),
    endpoint: gateway.url,
  });
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
  gateway.refundSettings({ alipayNotify: true, settleAfterMs: 20 });
});

/** An Alipay trade of `totalAmount` yuan: order string opened, then paid. */
function paidTrade(totalAmount = '10.00'): { outTradeNo: string; tradeNo: string } {
  const outTradeNo = nextNo('ALR');
  const orderString = sdk.sdkExecute('alipay.trade.app.pay', {
    notifyUrl: `${merchant.url}/alipay/notify`,
    bizContent: { outTradeNo, totalAmount, subject: '退款测试', productCode: 'QUICK_MSECURITY_PAY' },
    timestamp: beijingDateTime(),
  });
  gateway.registerAlipayOrder(orderString);
  return { outTradeNo, tradeNo: gateway.pay(outTradeNo).transactionId };
}

const exec = (method: string, bizContent: Record<string, unknown>) => sdk.exec(method, { bizContent, timestamp: beijingDateTime() }, { validateSign: true });
const refund = (bizContent: Record<string, unknown>) => exec('alipay.trade.refund', bizContent);
const refundQuery = (bizContent: Record<string, unknown>) => exec('alipay.trade.fastpay.refund.query', bizContent);
const tradeStatus = async (outTradeNo: string) => (await exec('alipay.trade.query', { out_trade_no: outTradeNo })).tradeStatus as string;

/** The notifications the merchant received, as decoded fields, each verified with alipay-sdk. */
function notifications(): Record<string, string>[] {
  return merchant.receivedOn('/alipay/notify').map((received) => {
    expect(received.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    const fields = Object.fromEntries(new URLSearchParams(received.body));
    expect(sdk.checkNotifySignV2(fields)).toBe(true);
    return fields;
  });
}

describe('alipay.trade.refund', () => {
  it('refunds a whole trade at once: 10000 fund_change Y; the trade is TRADE_CLOSED and Alipay notifies TRADE_CLOSED', async () => {
    const { outTradeNo, tradeNo } = paidTrade('12.34');
    const outRequestNo = nextNo('RQ');
    const result = await refund({ out_trade_no: outTradeNo, refund_amount: '12.34', out_request_no: outRequestNo, refund_reason: '用户退货' });
    expect(result).toEqual({
      code: '10000',
      msg: 'Success',
      buyerLogonId: gateway.trade(outTradeNo)?.payer?.buyerLogonId,
      fundChange: 'Y',
      gmtRefundPay: expect.stringMatching(BEIJING_DATE_TIME),
      outTradeNo,
      refundFee: '12.34',
      tradeNo,
    });
    const refundedAt = Date.parse(`${(result.gmtRefundPay as string).replace(' ', 'T')}+08:00`);
    expect(Math.abs(refundedAt - Date.now())).toBeLessThan(5000);
    expect(await tradeStatus(outTradeNo)).toBe('TRADE_CLOSED');
    expect(gateway.refunds(outTradeNo)).toEqual([
      expect.objectContaining({ channel: 'alipay', outRefundNo: outRequestNo, status: 'SUCCESS', amountFen: 1234, reason: '用户退货' }),
    ]);

    await gateway.refundsSettled();
    const [notification, ...more] = notifications();
    expect(more).toEqual([]);
    expect(notification).toMatchObject({
      notify_type: 'trade_status_sync',
      app_id: creds.alipay.app_id,
      out_trade_no: outTradeNo,
      trade_no: tradeNo,
      total_amount: '12.34',
      trade_status: 'TRADE_CLOSED',
      refund_fee: '12.34',
      out_biz_no: outRequestNo,
      gmt_refund: expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/),
      gmt_close: expect.stringMatching(BEIJING_DATE_TIME),
      gmt_payment: expect.stringMatching(BEIJING_DATE_TIME),
      seller_id: creds.alipay.seller_id,
    });
    expect(notification.gmt_refund.slice(0, 19)).toBe(result.gmtRefundPay);
    expect(gateway.refunds(outTradeNo)[0].notification).toMatchObject({ url: `${merchant.url}/alipay/notify`, status: 200, body: 'success' });
  });

  it('refunds in parts: TRADE_SUCCESS until all of it is refunded, refund_fee the total so far; then TRADE_CLOSED and ACQ.TRADE_HAS_CLOSE', async () => {
    const { outTradeNo } = paidTrade('10.00');
    const first = await refund({ out_trade_no: outTradeNo, refund_amount: '3.00', out_request_no: nextNo('RQ') });
    expect(first).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '3.00' });
    expect(await tradeStatus(outTradeNo)).toBe('TRADE_SUCCESS');

    const tooMuch = await refund({ out_trade_no: outTradeNo, refund_amount: '7.01', out_request_no: nextNo('RQ') });
    expect(tooMuch).toMatchObject({
      code: '40004',
      msg: 'Business Failed',
      subCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
      subMsg: '退款金额超限',
      refundFee: '3.00',
    });

    const second = await refund({ out_trade_no: outTradeNo, refund_amount: '7.00', out_request_no: nextNo('RQ') });
    expect(second).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '10.00' });
    expect(await tradeStatus(outTradeNo)).toBe('TRADE_CLOSED');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '0.01', out_request_no: nextNo('RQ') })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.TRADE_HAS_CLOSE',
    });

    await gateway.refundsSettled();
    // Each notification tells the trade as its refund left it.
    expect(notifications().map((n) => [n.trade_status, n.refund_fee, n.gmt_close])).toEqual([
      ['TRADE_SUCCESS', '3.00', undefined],
      ['TRADE_CLOSED', '10.00', expect.stringMatching(BEIJING_DATE_TIME)],
    ]);
  });

  it('answers the same out_request_no again with 10000 fund_change N (nothing moves); another amount is ACQ.DISCORDANT_REPEAT_REQUEST', async () => {
    const { outTradeNo } = paidTrade('10.00');
    const outRequestNo = nextNo('RQ');
    const first = await refund({ out_trade_no: outTradeNo, refund_amount: '4.00', out_request_no: outRequestNo });
    const again = await refund({ out_trade_no: outTradeNo, refund_amount: '4.00', out_request_no: outRequestNo });
    expect(again).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '4.00', gmtRefundPay: first.gmtRefundPay });
    expect(gateway.trade(outTradeNo)?.refundedFen).toBe(400);
    expect(gateway.refunds(outTradeNo)).toHaveLength(1);
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '4.01', out_request_no: outRequestNo })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.DISCORDANT_REPEAT_REQUEST',
    });
    await gateway.refundsSettled();
    expect(notifications()).toHaveLength(1);
  });

  it('numbers a refund without out_request_no by its trade: the whole amount only, once', async () => {
    const { outTradeNo } = paidTrade('5.00');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '2.00' })).toMatchObject({ code: '40004', subCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL' });
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '5.00' })).toMatchObject({ code: '10000', fundChange: 'Y' });
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '5.00' })).toMatchObject({ code: '10000', fundChange: 'N' });
    expect(await refundQuery({ out_trade_no: outTradeNo, out_request_no: outTradeNo })).toMatchObject({ refundStatus: 'REFUND_SUCCESS', refundAmount: '5.00' });
  });

  it('finds the trade by trade_no too', async () => {
    const { outTradeNo, tradeNo } = paidTrade('1.00');
    expect(await refund({ trade_no: tradeNo, refund_amount: '1.00', out_request_no: nextNo('RQ') })).toMatchObject({ code: '10000', outTradeNo, tradeNo });
  });

  it('refuses a trade Alipay does not have, one not paid, and one closed unpaid', async () => {
    const missing = nextNo('ALR');
    expect(await refund({ out_trade_no: missing, refund_amount: '1.00', out_request_no: 'RQ1' })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.TRADE_NOT_EXIST',
      subMsg: '交易不存在',
      outTradeNo: missing,
    });
    const waiting = nextNo('ALR');
    gateway.registerAlipayOrder(
      sdk.sdkExecute('alipay.trade.app.pay', { bizContent: { outTradeNo: waiting, totalAmount: '1.00', subject: 'x' }, timestamp: beijingDateTime() }),
    );
    expect(await refund({ out_trade_no: waiting, refund_amount: '1.00', out_request_no: 'RQ1' })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.TRADE_STATUS_ERROR',
    });
    await exec('alipay.trade.close', { out_trade_no: waiting });
    expect(await refund({ out_trade_no: waiting, refund_amount: '1.00', out_request_no: 'RQ1' })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.TRADE_HAS_CLOSE',
    });
    expect(gateway.refunds(waiting)).toEqual([]);
  });

  it('refuses a TRADE_FINISHED trade (its refund period over) with ACQ.TRADE_HAS_FINISHED', async () => {
    const { outTradeNo } = paidTrade('2.00');
    expect(gateway.finishAlipayTrade(outTradeNo).finishedAt).toEqual(expect.any(String));
    expect(await tradeStatus(outTradeNo)).toBe('TRADE_FINISHED');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '2.00', out_request_no: nextNo('RQ') })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.TRADE_HAS_FINISHED',
      subMsg: '交易已完结',
    });
    expect(gateway.refunds(outTradeNo)).toEqual([]);
    expect(() => gateway.finishAlipayTrade(nextNo('ALR'))).toThrow(expect.objectContaining({ code: 'TRADE_NOT_FOUND' }));
  });

  it.each([
    ['zero', 'ACQ.REASON_TRADE_REFUND_FEE_ERR', '0.00'],
    ['with three decimals', 'ACQ.INVALID_PARAMETER', '1.001'],
    ['a number, not a string', 'ACQ.INVALID_PARAMETER', 1],
    ['missing', 'ACQ.INVALID_PARAMETER', undefined],
  ])('refuses a refund_amount %s with %s', async (_name, subCode, amount) => {
    const { outTradeNo } = paidTrade('2.00');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: amount, out_request_no: nextNo('RQ') })).toMatchObject({ code: '40004', subCode });
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });

  it('refuses an out_request_no Alipay cannot take, and a request naming no trade', async () => {
    const { outTradeNo } = paidTrade('2.00');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '1.00', out_request_no: 'R'.repeat(65) })).toMatchObject({
      subCode: 'ACQ.INVALID_PARAMETER',
    });
    expect(await refund({ refund_amount: '1.00', out_request_no: 'RQ1' })).toMatchObject({ code: '40004', subCode: 'ACQ.INVALID_PARAMETER' });
  });
});

describe('alipay.trade.fastpay.refund.query', () => {
  it('answers REFUND_SUCCESS with the refund, gmt_refund_pay when asked for in query_options', async () => {
    const { outTradeNo, tradeNo } = paidTrade('8.00');
    const outRequestNo = nextNo('RQ');
    const made = await refund({ out_trade_no: outTradeNo, refund_amount: '3.50', out_request_no: outRequestNo });
    const result = await refundQuery({ out_trade_no: outTradeNo, out_request_no: outRequestNo, query_options: ['gmt_refund_pay'] });
    expect(result).toEqual({
      code: '10000',
      msg: 'Success',
      gmtRefundPay: made.gmtRefundPay,
      outRequestNo,
      outTradeNo,
      refundAmount: '3.50',
      refundStatus: 'REFUND_SUCCESS',
      totalAmount: '8.00',
      tradeNo,
    });
    const plain = await refundQuery({ trade_no: tradeNo, out_request_no: outRequestNo });
    expect(plain).toMatchObject({ refundStatus: 'REFUND_SUCCESS', outTradeNo });
    expect(plain.gmtRefundPay).toBeUndefined();
  });

  it('answers 10000 without refund_status or amounts for a refund it does not have (never received, or refused)', async () => {
    const { outTradeNo, tradeNo } = paidTrade('8.00');
    gateway.failNextRefund('alipay', 'balance');
    const outRequestNo = nextNo('RQ');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '8.00', out_request_no: outRequestNo })).toMatchObject({
      subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH',
    });
    const result = await refundQuery({ out_trade_no: outTradeNo, out_request_no: outRequestNo, query_options: ['gmt_refund_pay'] });
    expect(result).toEqual({ code: '10000', msg: 'Success', outRequestNo, outTradeNo, tradeNo });
  });

  it('refuses a trade Alipay does not have (ACQ.TRADE_NOT_EXIST) and a query without out_request_no (ACQ.INVALID_PARAMETER)', async () => {
    expect(await refundQuery({ out_trade_no: nextNo('ALR'), out_request_no: 'RQ1' })).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });
    const { outTradeNo } = paidTrade('1.00');
    expect(await refundQuery({ out_trade_no: outTradeNo })).toMatchObject({ code: '40004', subCode: 'ACQ.INVALID_PARAMETER' });
  });
});

describe('Alipay refund failures and switches', () => {
  it("failNextRefund('alipay', 'balance'): ACQ.SELLER_BALANCE_NOT_ENOUGH, nothing refunded; the retry with the same number refunds", async () => {
    const { outTradeNo } = paidTrade('6.00');
    gateway.failNextRefund('alipay', 'balance');
    const outRequestNo = nextNo('RQ');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '6.00', out_request_no: outRequestNo })).toMatchObject({
      code: '40004',
      subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH',
      subMsg: '卖家余额不足',
    });
    expect(gateway.refunds(outTradeNo)).toEqual([]);
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '6.00', out_request_no: outRequestNo })).toMatchObject({ code: '10000', fundChange: 'Y' });
  });

  it("failNextRefund('alipay', 'silent') and refundSettings({ alipayNotify: false }): refunded, but nothing is notified", async () => {
    const silent = paidTrade('1.00');
    gateway.failNextRefund('alipay', 'silent');
    expect(await refund({ out_trade_no: silent.outTradeNo, refund_amount: '1.00', out_request_no: nextNo('RQ') })).toMatchObject({ fundChange: 'Y' });
    gateway.refundSettings({ alipayNotify: false });
    const off = paidTrade('1.00');
    expect(await refund({ out_trade_no: off.outTradeNo, refund_amount: '1.00', out_request_no: nextNo('RQ') })).toMatchObject({ fundChange: 'Y' });
    await gateway.refundsSettled();
    expect(merchant.received).toEqual([]);
    expect(gateway.refunds(silent.outTradeNo)[0].notification).toBeUndefined();
    expect(gateway.refunds(off.outTradeNo)[0].notification).toBeUndefined();
  });

  it('refuses refund failures Alipay does not have: its refunds do not end ABNORMAL or CLOSED', () => {
    expect(() => gateway.failNextRefund('alipay', 'abnormal')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => gateway.failNextRefund('alipay', 'closed')).toThrow(/cannot fail as 'closed'/);
  });

  it("failNext('alipay.refund', 1, '500'): exec throws an HTTP error and nothing is refunded", async () => {
    const { outTradeNo } = paidTrade('3.00');
    gateway.failNext('alipay.refund', 1, '500');
    await expect(refund({ out_trade_no: outTradeNo, refund_amount: '3.00', out_request_no: nextNo('RQ') })).rejects.toThrow(/status: 500/);
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });

  it("failNext('alipay.refund', 1, 'busy'): the signed code 20000 isp.unknow-error, nothing refunded", async () => {
    const { outTradeNo } = paidTrade('3.00');
    gateway.failNext('alipay.refund', 1, 'busy');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '3.00', out_request_no: nextNo('RQ') })).toMatchObject({
      code: '20000',
      subCode: 'isp.unknow-error',
    });
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });

  it("failNext('alipay.refund', 2, 'drop'): refunded, but the caller sees only a connection error; the query tells", async () => {
    const { outTradeNo } = paidTrade('3.00');
    const outRequestNo = nextNo('RQ');
    gateway.failNext('alipay.refund', 2, 'drop');
    await expect(refund({ out_trade_no: outTradeNo, refund_amount: '3.00', out_request_no: outRequestNo })).rejects.toThrow(/HttpClient Request error/);
    expect(gateway.refunds(outTradeNo)).toEqual([expect.objectContaining({ outRefundNo: outRequestNo, status: 'SUCCESS' })]);
    expect(await refundQuery({ out_trade_no: outTradeNo, out_request_no: outRequestNo })).toMatchObject({ refundStatus: 'REFUND_SUCCESS' });
  });

  it("'drop' once is hidden by urllib's silent retry: the refund comes back fund_change N, made once", async () => {
    const { outTradeNo } = paidTrade('3.00');
    gateway.failNext('alipay.refund', 1, 'drop');
    expect(await refund({ out_trade_no: outTradeNo, refund_amount: '3.00', out_request_no: nextNo('RQ') })).toMatchObject({
      code: '10000',
      fundChange: 'N',
      refundFee: '3.00',
    });
    expect(gateway.trade(outTradeNo)?.refundedFen).toBe(300);
  });

  it("failNext('alipay.refundQuery', 1, 'busy'): the query answers 20000 once", async () => {
    const { outTradeNo } = paidTrade('3.00');
    gateway.failNext('alipay.refundQuery', 1, 'busy');
    expect(await refundQuery({ out_trade_no: outTradeNo, out_request_no: 'RQ1' })).toMatchObject({ code: '20000' });
    expect(await refundQuery({ out_trade_no: outTradeNo, out_request_no: 'RQ1' })).toMatchObject({ code: '10000' });
  });

  it('checks the app signature on refunds as on every method: another key is isv.invalid-signature', async () => {
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const { outTradeNo } = paidTrade('3.00');
    const wary = new AlipaySdk({
      appId: creds.alipay.app_id,
      privateKey: forger,
      alipayPublicKey: creds.alipay.alipay_public_key_pem,
      gateway: alipayGatewayUrl(gateway.url),
    });
    const result = await wary.exec(
      'alipay.trade.refund',
      { bizContent: { out_trade_no: outTradeNo, refund_amount: '3.00' }, timestamp: beijingDateTime() },
      { validateSign: true },
    );
    expect(result).toMatchObject({ code: '40002', subCode: 'isv.invalid-signature' });
    expect(gateway.refunds(outTradeNo)).toEqual([]);
  });
});
