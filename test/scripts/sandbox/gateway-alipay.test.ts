import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import { alipayGatewayUrl, generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, SandboxGatewayError, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import { beijingDateTime } from '../../support/sandboxBeijingTime';

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let sdk: AlipaySdk;
let seq = 0;
const nextOutTradeNo = () => `ALI_${Date.now()}_${(seq += 1)}`;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds });
  sdk = alipayClient();
});
afterAll(async () => {
  await gateway.close();
});

/** The client as the app builds it, pointed at the sandbox. */
function alipayClient(overrides: Partial<ConstructorParameters<typeof AlipaySdk>[0]> = {}): AlipaySdk {
  return new AlipaySdk({
    appId: creds.alipay.app_id,
    privateKey: creds.alipay.app_private_key_pem,
    alipayPublicKey: creds.alipay.alipay_public_key_pem,
    gateway: alipayGatewayUrl(gateway.url),
    endpoint: gateway.url,
    ...overrides,
  });
}

/** alipay-sdk stamps `timestamp` in the process time zone; Alipay reads it as Beijing time. */
const beijingNow = () => ({ timestamp: beijingDateTime() });

function query(outTradeNo: string, client = sdk) {
  return client.exec('alipay.trade.query', { bizContent: { out_trade_no: outTradeNo }, ...beijingNow() }, { validateSign: true });
}
function close(outTradeNo: string, client = sdk) {
  return client.exec('alipay.trade.close', { bizContent: { out_trade_no: outTradeNo }, ...beijingNow() }, { validateSign: true });
}

/** The APP order string the app hands to the Alipay SDK on the phone: signed locally, no HTTP. */
function orderString(outTradeNo: string, totalAmount = '12.34', client = sdk, subject = '测试商品 x1'): string {
  return client.sdkExecute('alipay.trade.app.pay', {
    notifyUrl: 'https://paynow.example.com/notify/alipay',
    bizContent: { outTradeNo, totalAmount, subject, productCode: 'QUICK_MSECURITY_PAY' },
    ...beijingNow(),
  });
}

describe('Alipay alipay.trade.query / close through alipay-sdk exec(..., { validateSign: true })', () => {
  it('answers ACQ.TRADE_NOT_EXIST for a trade Alipay has not seen, signed so that the SDK accepts it', async () => {
    const outTradeNo = nextOutTradeNo();
    const result = await query(outTradeNo);
    expect(result).toMatchObject({ code: '40004', msg: 'Business Failed', subCode: 'ACQ.TRADE_NOT_EXIST', outTradeNo });
  });

  it('goes WAIT_BUYER_PAY once the order string is opened, TRADE_SUCCESS once paid; close is then ACQ.TRADE_STATUS_ERROR', async () => {
    const outTradeNo = nextOutTradeNo();
    const registered = gateway.registerAlipayOrder(orderString(outTradeNo, '12.34'));
    expect(registered).toMatchObject({
      channel: 'alipay',
      outTradeNo,
      amountFen: 1234,
      status: 'UNPAID',
      notifyUrl: 'https://paynow.example.com/notify/alipay',
    });
    expect(registered.transactionId).toMatch(/^\d{8}22001\d{15}$/);

    const waiting = await query(outTradeNo);
    expect(waiting).toMatchObject({
      code: '10000',
      msg: 'Success',
      tradeStatus: 'WAIT_BUYER_PAY',
      totalAmount: '12.34',
      tradeNo: registered.transactionId,
      outTradeNo,
    });

    const paid = gateway.pay(outTradeNo);
    expect(paid).toEqual({ channel: 'alipay', transactionId: registered.transactionId, amountFen: 1234 });
    const success = await query(outTradeNo);
    expect(success).toMatchObject({
      code: '10000',
      tradeStatus: 'TRADE_SUCCESS',
      tradeNo: paid.transactionId,
      totalAmount: '12.34',
      buyerPayAmount: '12.34',
      receiptAmount: '12.34',
      buyerLogonId: expect.stringMatching(/\*{4}/),
      buyerUserId: expect.stringMatching(/^2088\d{12}$/),
      sendPayDate: expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/),
    });
    // send_pay_date is Beijing time.
    const sent = Date.parse(`${(success.sendPayDate as string).replace(' ', 'T')}+08:00`);
    expect(Math.abs(sent - Date.now())).toBeLessThan(5000);

    expect(await close(outTradeNo)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
  });

  it('closes a waiting trade (10000, TRADE_CLOSED); the user can no longer pay, a second close is ACQ.TRADE_STATUS_ERROR', async () => {
    const outTradeNo = nextOutTradeNo();
    const { transactionId } = gateway.registerAlipayOrder(orderString(outTradeNo, '0.01'));
    expect(await close(outTradeNo)).toMatchObject({ code: '10000', msg: 'Success', outTradeNo, tradeNo: transactionId });
    expect(await query(outTradeNo)).toMatchObject({ code: '10000', tradeStatus: 'TRADE_CLOSED', totalAmount: '0.01' });
    expect(() => gateway.pay(outTradeNo)).toThrow(expect.objectContaining({ code: 'TRADE_CLOSED' }));
    expect(await close(outTradeNo)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
  });

  it('closes an unknown trade with ACQ.TRADE_NOT_EXIST, and finds trades by trade_no too', async () => {
    expect(await close(nextOutTradeNo())).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });
    const outTradeNo = nextOutTradeNo();
    const { transactionId } = gateway.registerAlipayOrder(orderString(outTradeNo));
    const byTradeNo = await sdk.exec('alipay.trade.query', { bizContent: { trade_no: transactionId }, ...beijingNow() }, { validateSign: true });
    expect(byTradeNo).toMatchObject({ code: '10000', outTradeNo, tradeStatus: 'WAIT_BUYER_PAY' });
  });

  it('refuses a request signed with another app key (isv.invalid-signature) or for another app (isv.invalid-app-id)', async () => {
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(await query(nextOutTradeNo(), alipayClient({ privateKey: forger }))).toMatchObject({ code: '40002', subCode: 'isv.invalid-signature' });
    expect(await query(nextOutTradeNo(), alipayClient({ appId: '2021000000000001' }))).toMatchObject({ code: '40002', subCode: 'isv.invalid-app-id' });
  });

  it('has its answers rejected by the SDK when they are signed with a key that is not the configured Alipay public key', async () => {
    const otherPublicKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const wary = alipayClient({ alipayPublicKey: otherPublicKey });
    await expect(query(nextOutTradeNo(), wary)).rejects.toThrow(/验签失败/);
    // Without validateSign the SDK takes any answer: the app must always pass it.
    const careless = await wary.exec('alipay.trade.query', { bizContent: { out_trade_no: nextOutTradeNo() }, ...beijingNow() });
    expect(careless.subCode).toBe('ACQ.TRADE_NOT_EXIST');
  });

  it('reads timestamp as Beijing time: the SDK default works only when the process runs at UTC+8', async () => {
    const defaultStamp = await sdk.exec('alipay.trade.query', { bizContent: { out_trade_no: nextOutTradeNo() } }, { validateSign: true });
    const runsInBeijingTime = new Date().getTimezoneOffset() === -480;
    expect(defaultStamp.subCode).toBe(runsInBeijingTime ? 'ACQ.TRADE_NOT_EXIST' : 'isv.invalid-timestamp');
    const utcStamp = new Date().toISOString().slice(0, 19).replace('T', ' ');
    const utc = await sdk.exec('alipay.trade.query', { bizContent: { out_trade_no: nextOutTradeNo() }, timestamp: utcStamp }, { validateSign: true });
    expect(utc.subCode).toBe('isv.invalid-timestamp');
  });
});

describe('registerAlipayOrder (the user opens the APP order string)', () => {
  it('verifies the order string with the app public key: tampering or another key is refused', () => {
    const outTradeNo = nextOutTradeNo();
    const genuine = orderString(outTradeNo, '12.34');
    const tampered = genuine.replace(encodeURIComponent('"total_amount":"12.34"'), encodeURIComponent('"total_amount":"0.01"'));
    expect(tampered).not.toBe(genuine);
    expect(() => gateway.registerAlipayOrder(tampered)).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(() => gateway.registerAlipayOrder(orderString(outTradeNo, '12.34', alipayClient({ privateKey: forger })))).toThrow(
      expect.objectContaining({ code: 'INVALID_SIGNATURE' }),
    );
    expect(gateway.trade(outTradeNo)).toBeUndefined();
  });

  it('is idempotent for the same order, and refuses the same out_trade_no with another amount (ACQ.CONTEXT_INCONSISTENT)', () => {
    const outTradeNo = nextOutTradeNo();
    const first = gateway.registerAlipayOrder(orderString(outTradeNo, '5.00'));
    expect(gateway.registerAlipayOrder(orderString(outTradeNo, '5.00')).transactionId).toBe(first.transactionId);
    expect(() => gateway.registerAlipayOrder(orderString(outTradeNo, '5.01'))).toThrow(expect.objectContaining({ code: 'ACQ.CONTEXT_INCONSISTENT' }));
    gateway.pay(outTradeNo);
    expect(() => gateway.registerAlipayOrder(orderString(outTradeNo, '5.00'))).toThrow(expect.objectContaining({ code: 'ACQ.TRADE_HAS_SUCCESS' }));
  });

  it.each([
    ['an out_trade_no with a dash', 'A-1', '1.00'],
    ['a zero amount', 'ALI_ZERO', '0.00'],
    ['three decimals', 'ALI_MILLI', '1.001'],
  ])('refuses %s', (_name, outTradeNo, amount) => {
    expect(() => gateway.registerAlipayOrder(orderString(outTradeNo, amount))).toThrow(SandboxGatewayError);
  });

  it('needs a pay() to be preceded by registration', () => {
    expect(() => gateway.pay(nextOutTradeNo())).toThrow(expect.objectContaining({ code: 'TRADE_NOT_FOUND' }));
  });

  it('accepts a PKCS#8 app key only with keyType PKCS8 (alipay-sdk 4.14)', () => {
    const pkcs8Pem = createPrivateKey(creds.alipay.app_private_key_pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    const outTradeNo = nextOutTradeNo();
    expect(gateway.registerAlipayOrder(orderString(outTradeNo, '1.00', alipayClient({ privateKey: pkcs8Pem, keyType: 'PKCS8' }))).status).toBe('UNPAID');
    expect(() => orderString(nextOutTradeNo(), '1.00', alipayClient({ privateKey: pkcs8Pem }))).toThrow(/DECODER|unsupported/);
  });

  it('works over HTTP too: POST /sandbox/alipay/register with the order string as body', async () => {
    const outTradeNo = nextOutTradeNo();
    const res = await fetch(`${gateway.url}/sandbox/alipay/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: orderString(outTradeNo, '3.30'),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outTradeNo, amountFen: 330, status: 'UNPAID' });
    const bad = await fetch(`${gateway.url}/sandbox/alipay/register`, { method: 'POST', body: 'app_id=1&method=x' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('INVALID_ORDER_STRING');
  });
});

describe('Alipay failNext', () => {
  it("'500' makes exec throw an HTTP error and changes nothing", async () => {
    const outTradeNo = nextOutTradeNo();
    gateway.registerAlipayOrder(orderString(outTradeNo));
    gateway.failNext('alipay.close', 1, '500');
    await expect(close(outTradeNo)).rejects.toThrow(/status: 500/);
    expect(gateway.trade(outTradeNo)?.status).toBe('UNPAID');
    expect(await close(outTradeNo)).toMatchObject({ code: '10000' });
  });

  it("'busy' answers Alipay's signed code 20000 isp.unknow-error", async () => {
    gateway.failNext('alipay.query', 1, 'busy');
    expect(await query(nextOutTradeNo())).toMatchObject({ code: '20000', subCode: 'isp.unknow-error' });
  });

  it("'drop' twice closes the trade but the caller sees only a connection error", async () => {
    const outTradeNo = nextOutTradeNo();
    gateway.registerAlipayOrder(orderString(outTradeNo));
    gateway.failNext('alipay.close', 2, 'drop');
    await expect(close(outTradeNo)).rejects.toThrow(/HttpClient Request error/);
    expect(gateway.trade(outTradeNo)?.status).toBe('CLOSED');
    expect(await query(outTradeNo)).toMatchObject({ tradeStatus: 'TRADE_CLOSED' });
  });

  it("'drop' once is hidden by urllib's silent retry: a close that worked comes back ACQ.TRADE_STATUS_ERROR", async () => {
    // urllib 4 (under alipay-sdk) re-sends any request, POST included, once after a socket error.
    // So TRADE_STATUS_ERROR from close does not mean "paid": the app must query to tell closed from paid.
    const outTradeNo = nextOutTradeNo();
    gateway.registerAlipayOrder(orderString(outTradeNo));
    gateway.failNext('alipay.close', 1, 'drop');
    expect(await close(outTradeNo)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect(await query(outTradeNo)).toMatchObject({ tradeStatus: 'TRADE_CLOSED' });
  });
});
