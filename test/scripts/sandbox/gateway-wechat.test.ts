import { createSign, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import WxPay from 'wechatpay-node-v3';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, SandboxGatewayError, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import { createWechatSandboxHttp, type WechatHttpResult } from '../../support/sandboxWechatHttp';

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let seq = 0;
const nextOutTradeNo = () => `WX_${Date.now()}_${(seq += 1)}`;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds });
});
afterAll(async () => {
  await gateway.close();
});

/** The client as the app builds it, its HTTP layer pointed at the sandbox. */
function wechatClient(overrides: { privateKey?: Buffer; serial_no?: string } = {}): WxPay {
  const pay = new WxPay({
    appid: creds.wechat.appid,
    mchid: creds.wechat.mchid,
    publicKey: Buffer.from(creds.wechat.merchant_cert_pem),
    privateKey: Buffer.from(creds.wechat.merchant_private_key_pem),
    ...overrides,
  });
  pay.createHttp(createWechatSandboxHttp(gateway.url));
  return pay;
}

function order(outTradeNo: string, total = 1234, extra: Record<string, unknown> = {}) {
  return {
    description: '测试商品 x1',
    out_trade_no: outTradeNo,
    notify_url: 'https://paynow.example.com/notify/wechat',
    amount: { total, currency: 'CNY' },
    ...extra,
  };
}

/** The check the app must do itself: wechatpay-node-v3 never verifies responses. */
function responseSignatureValid(result: WechatHttpResult): boolean {
  const h = result.headers ?? {};
  const message = `${h['wechatpay-timestamp']}\n${h['wechatpay-nonce']}\n${result.rawBody}\n`;
  return createVerify('RSA-SHA256')
    .update(message)
    .verify(creds.wechat.platform_public_key_pem, h['wechatpay-signature'] ?? '', 'base64');
}

function errorOf(result: WechatHttpResult): { code: string; message: string } {
  return JSON.parse(result.error as string) as { code: string; message: string };
}

/** A request signed by hand, to control what the SDK will not: timestamp, body swaps. */
async function signedRequest(opts: {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  timestamp?: number;
  sendBody?: string;
  sendPath?: string;
  headers?: Record<string, string>;
}) {
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const message = `${opts.method}\n${opts.path}\n${timestamp}\n${nonce}\n${opts.body ?? ''}\n`;
  const signature = createSign('RSA-SHA256').update(message).sign(creds.wechat.merchant_private_key_pem, 'base64');
  const authorization = `WECHATPAY2-SHA256-RSA2048 mchid="${creds.wechat.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${creds.wechat.merchant_serial}"`;
  const res = await fetch(`${gateway.url}${opts.sendPath ?? opts.path}`, {
    method: opts.method,
    headers: { Authorization: authorization, Accept: 'application/json', 'Content-Type': 'application/json', ...opts.headers },
    body: opts.method === 'POST' ? (opts.sendBody ?? opts.body) : undefined,
  });
  return { status: res.status, text: await res.text(), serial: res.headers.get('wechatpay-serial') };
}

describe('WeChat Pay v3 prepay (POST /v3/pay/transactions/app) through wechatpay-node-v3', () => {
  it('returns a pay_param built on the sandbox prepay_id, and signs its answer with the platform key', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    const result: WechatHttpResult = await pay.transactions_app(order(outTradeNo));
    expect(result.status).toBe(200);
    const param = result.data as Record<string, string>;
    expect(param.prepayid).toMatch(/^wx\d{14}[0-9a-f]{20}$/);
    expect(param.prepayid).toBe(gateway.trade(outTradeNo)?.prepayId);
    expect(param).toMatchObject({ appid: creds.wechat.appid, partnerid: creds.wechat.mchid, package: 'Sign=WXPay' });
    const signed = `${param.appid}\n${param.timestamp}\n${param.noncestr}\n${param.prepayid}\n`;
    expect(createVerify('RSA-SHA256').update(signed).verify(creds.wechat.merchant_cert_pem, param.sign, 'base64')).toBe(true);

    expect(result.headers?.['wechatpay-serial']).toBe(creds.wechat.platform_serial);
    expect(result.headers?.['request-id']).toBeTruthy();
    expect(JSON.parse(result.rawBody!)).toEqual({ prepay_id: param.prepayid });
    expect(responseSignatureValid(result)).toBe(true);
    expect(responseSignatureValid({ ...result, rawBody: result.rawBody!.replace('wx', 'wy') })).toBe(false);
  });

  it('gives the same prepay_id for the same out_trade_no and order, whatever the key order', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    const first = await pay.transactions_app(order(outTradeNo));
    const reordered = {
      amount: { currency: 'CNY', total: 1234 },
      notify_url: order(outTradeNo).notify_url,
      out_trade_no: outTradeNo,
      description: '测试商品 x1',
    };
    const second = await pay.transactions_app(reordered);
    expect(second.status).toBe(200);
    expect(second.data.prepayid).toBe(first.data.prepayid);
  });

  it('refuses the same out_trade_no with another amount or description: 400 INVALID_REQUEST "201 商户订单号重复"', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    expect((await pay.transactions_app(order(outTradeNo, 1234))).status).toBe(200);
    const other = await pay.transactions_app(order(outTradeNo, 1235));
    expect(other.status).toBe(400);
    expect(errorOf(other)).toEqual({ code: 'INVALID_REQUEST', message: '201 商户订单号重复' });
    expect(responseSignatureValid(other)).toBe(true);
    const renamed = await pay.transactions_app(order(outTradeNo, 1234, { description: '别的商品' }));
    expect(errorOf(renamed).code).toBe('INVALID_REQUEST');
    expect(gateway.trade(outTradeNo)?.amountFen).toBe(1234);
  });

  it.each([
    ['amount.total zero', { amount: { total: 0, currency: 'CNY' } }],
    ['amount.total fractional', { amount: { total: 12.5, currency: 'CNY' } }],
    ['amount.total as string', { amount: { total: '100', currency: 'CNY' } }],
    ['currency not CNY', { amount: { total: 100, currency: 'USD' } }],
    ['out_trade_no too short', { out_trade_no: 'abc' }],
    ['out_trade_no with a dot', { out_trade_no: 'ORDER.000001' }],
    ['notify_url not http(s)', { notify_url: 'ftp://paynow.example.com/notify' }],
    ['time_expire not RFC3339', { time_expire: '2030-01-01 00:00:00' }],
    ['time_expire already past', { time_expire: '2020-01-01T00:00:00+08:00' }],
    ['description missing', { description: '' }],
  ])('refuses %s with 400 PARAM_ERROR', async (_name, change) => {
    // Malformed on purpose: the SDK's types would not let it through.
    const result = await wechatClient().transactions_app({ ...order(nextOutTradeNo()), ...change } as unknown as ReturnType<typeof order>);
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('PARAM_ERROR');
  });

  it('accepts an order without currency and with a future time_expire', async () => {
    const outTradeNo = nextOutTradeNo();
    const result = await wechatClient().transactions_app({
      description: 'x',
      out_trade_no: outTradeNo,
      notify_url: 'http://localhost:3000/notify',
      amount: { total: 1 },
      time_expire: '2099-01-01T00:00:00+08:00',
    });
    expect(result.status).toBe(200);
    expect(gateway.trade(outTradeNo)).toMatchObject({
      amountFen: 1,
      status: 'UNPAID',
      timeExpire: '2099-01-01T00:00:00+08:00',
      notifyUrl: 'http://localhost:3000/notify',
    });
  });

  it("refuses an appid that is not the merchant's: 400 APPID_MCHID_NOT_MATCH", async () => {
    const result = await wechatClient().transactions_app({ ...order(nextOutTradeNo()), appid: 'wx0000000000000000' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('APPID_MCHID_NOT_MATCH');
  });
});

describe('WeChat Pay v3 request signature (Authorization)', () => {
  it('refuses a request signed with another key: 401 SIGN_ERROR', async () => {
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    const result = await wechatClient({ privateKey: Buffer.from(forger) }).transactions_app(order(nextOutTradeNo()));
    expect(result.status).toBe(401);
    expect(errorOf(result).code).toBe('SIGN_ERROR');
  });

  it("refuses a serial_no that is not the merchant certificate's: 401 SIGN_ERROR", async () => {
    const result = await wechatClient({ serial_no: '1234567890ABCDEF1234567890ABCDEF12345678' }).query({ out_trade_no: 'ORDER_000001' });
    expect(result.status).toBe(401);
    expect(errorOf(result).code).toBe('SIGN_ERROR');
  });

  it('accepts a hand-signed request with a fresh timestamp and refuses the same one 10 minutes old', async () => {
    const path = `/v3/pay/transactions/out-trade-no/NEVER_CREATED_1?mchid=${creds.wechat.mchid}`;
    const fresh = await signedRequest({ method: 'GET', path });
    expect(fresh.status).toBe(404);
    expect(JSON.parse(fresh.text).code).toBe('ORDER_NOT_EXIST');
    const stale = await signedRequest({ method: 'GET', path, timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(stale.status).toBe(401);
    expect(JSON.parse(stale.text).code).toBe('SIGN_ERROR');
    const future = await signedRequest({ method: 'GET', path, timestamp: Math.floor(Date.now() / 1000) + 600 });
    expect(future.status).toBe(401);
  });

  it('refuses a body or a path that is not the one signed, a garbage Authorization, and none', async () => {
    const signedBody = JSON.stringify({ appid: creds.wechat.appid, mchid: creds.wechat.mchid, ...order(nextOutTradeNo(), 1) });
    const swapped = await signedRequest({
      method: 'POST',
      path: '/v3/pay/transactions/app',
      body: signedBody,
      sendBody: signedBody.replace('"total":1', '"total":2'),
    });
    expect(swapped.status).toBe(401);
    const control = await signedRequest({ method: 'POST', path: '/v3/pay/transactions/app', body: signedBody });
    expect(control.status).toBe(200);

    const signedPath = `/v3/pay/transactions/out-trade-no/NEVER_CREATED_5?mchid=${creds.wechat.mchid}`;
    const otherPath = await signedRequest({ method: 'GET', path: signedPath, sendPath: signedPath.replace('_5', '_6') });
    expect(otherPath.status).toBe(401);
    expect((await signedRequest({ method: 'GET', path: signedPath })).status).toBe(404);

    const garbage = await fetch(`${gateway.url}/v3/pay/transactions/out-trade-no/X_000001?mchid=${creds.wechat.mchid}`, {
      headers: { Authorization: 'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="a",signature="b",timestamp="1",serial_no="c"' },
    });
    expect(garbage.status).toBe(401);
    const missing = await fetch(`${gateway.url}/v3/pay/transactions/out-trade-no/X_000001?mchid=${creds.wechat.mchid}`);
    expect(missing.status).toBe(401);
  });
});

describe('WeChat Pay v3 answers signed with the key the request names (Wechatpay-Serial)', () => {
  const query = (headers?: Record<string, string>) =>
    signedRequest({ method: 'GET', path: `/v3/pay/transactions/out-trade-no/${nextOutTradeNo()}?mchid=${creds.wechat.mchid}`, headers });

  it('signs with the WeChat Pay public key, named or not, for a merchant that never had certificates', async () => {
    expect(await query()).toMatchObject({ status: 404, serial: creds.wechat.platform_serial });
    expect(await query({ 'Wechatpay-Serial': creds.wechat.platform_serial })).toMatchObject({ status: 404, serial: creds.wechat.platform_serial });
  });

  it('during a switch from platform certificates, signs with the certificate unless the request names the public key', async () => {
    gateway.wechatCertificateSwitch('5157F09EFDC096DE15EBE81A47057A72');
    try {
      expect(await query()).toMatchObject({ status: 404, serial: '5157F09EFDC096DE15EBE81A47057A72' });
      expect(await query({ 'Wechatpay-Serial': creds.wechat.platform_serial })).toMatchObject({ status: 404, serial: creds.wechat.platform_serial });
    } finally {
      gateway.wechatCertificateSwitch(undefined);
    }
  });

  it('refuses a Wechatpay-Serial that is not its public key id, before doing anything: 400 INVALID_REQUEST', async () => {
    const answer = await query({ 'Wechatpay-Serial': 'PUB_KEY_ID_0000' });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'INVALID_REQUEST' });
    const outTradeNo = nextOutTradeNo();
    const body = JSON.stringify({ appid: creds.wechat.appid, mchid: creds.wechat.mchid, ...order(outTradeNo) });
    const prepay = await signedRequest({ method: 'POST', path: '/v3/pay/transactions/app', body, headers: { 'Wechatpay-Serial': 'PUB_KEY_ID_0000' } });
    expect(prepay.status).toBe(400);
    expect(gateway.trade(outTradeNo)).toBeUndefined();
  });
});

describe('WeChat Pay v3 query / close / pay', () => {
  it('queries 404 ORDER_NOT_EXIST for an unknown out_trade_no', async () => {
    const result = await wechatClient().query({ out_trade_no: 'NEVER_CREATED_2' });
    expect(result.status).toBe(404);
    expect(errorOf(result).code).toBe('ORDER_NOT_EXIST');
    expect(responseSignatureValid(result)).toBe(true);
  });

  it('goes NOTPAY -> SUCCESS when the user pays; then close and prepay are refused with ORDERPAID', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    await pay.transactions_app(order(outTradeNo, 2599, { attach: 'attempt-1' }));

    const before: WechatHttpResult = await pay.query({ out_trade_no: outTradeNo });
    expect(before.status).toBe(200);
    expect(responseSignatureValid(before)).toBe(true);
    expect(before.data).toEqual({
      amount: { currency: 'CNY', payer_currency: 'CNY', total: 2599 },
      appid: creds.wechat.appid,
      attach: 'attempt-1',
      mchid: creds.wechat.mchid,
      out_trade_no: outTradeNo,
      promotion_detail: [],
      scene_info: { device_id: '' },
      trade_state: 'NOTPAY',
      trade_state_desc: '订单未支付',
    });

    const paid = gateway.pay(outTradeNo);
    expect(paid).toEqual({ channel: 'wechat', transactionId: expect.stringMatching(/^4200\d{24}$/), amountFen: 2599 });
    expect(gateway.pay(outTradeNo)).toEqual(paid); // paying twice changes nothing

    const after: WechatHttpResult = await pay.query({ out_trade_no: outTradeNo });
    expect(after.data).toMatchObject({
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      trade_type: 'APP',
      transaction_id: paid.transactionId,
      amount: { total: 2599, payer_total: 2599, currency: 'CNY', payer_currency: 'CNY' },
      payer: { openid: expect.stringMatching(/^o[A-Za-z0-9]{27}$/) },
      success_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/),
    });
    const successTime = Date.parse((after.data as { success_time: string }).success_time);
    expect(Math.abs(successTime - Date.now())).toBeLessThan(5000);

    const close = await pay.close(outTradeNo);
    expect(close.status).toBe(400);
    expect(errorOf(close).code).toBe('ORDERPAID');
    const again = await pay.transactions_app(order(outTradeNo, 2599, { attach: 'attempt-1' }));
    expect(again.status).toBe(400);
    expect(errorOf(again).code).toBe('ORDERPAID');
  });

  it('goes NOTPAY -> CLOSED on close (204, again 204); then the user cannot pay and prepay is ORDER_CLOSED', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    await pay.transactions_app(order(outTradeNo));
    const closed: WechatHttpResult = await pay.close(outTradeNo);
    expect(closed.status).toBe(204);
    expect(closed.rawBody).toBe('');
    expect(responseSignatureValid(closed)).toBe(true);
    expect((await pay.close(outTradeNo)).status).toBe(204);

    expect((await pay.query({ out_trade_no: outTradeNo })).data).toMatchObject({ trade_state: 'CLOSED', trade_state_desc: '订单已关闭' });
    expect(() => gateway.pay(outTradeNo)).toThrow(SandboxGatewayError);
    expect(() => gateway.pay(outTradeNo)).toThrow(/closed/);
    const again = await pay.transactions_app(order(outTradeNo));
    expect(again.status).toBe(400);
    expect(errorOf(again).code).toBe('ORDER_CLOSED');
  });

  it('closes an unknown out_trade_no with 404 ORDER_NOT_EXIST; pay() of one throws TRADE_NOT_FOUND', async () => {
    const close = await wechatClient().close('NEVER_CREATED_3');
    expect(close.status).toBe(404);
    expect(errorOf(close).code).toBe('ORDER_NOT_EXIST');
    expect(() => gateway.pay('NEVER_CREATED_3')).toThrow(expect.objectContaining({ code: 'TRADE_NOT_FOUND' }));
  });

  it('pays through the simulator route POST /sandbox/pay/{out_trade_no}', async () => {
    const outTradeNo = nextOutTradeNo();
    await wechatClient().transactions_app(order(outTradeNo, 500));
    const res = await fetch(`${gateway.url}/sandbox/pay/${outTradeNo}`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { channel: string; transactionId: string; amountFen: number };
    expect(body).toMatchObject({ channel: 'wechat', amountFen: 500, outTradeNo });
    expect(gateway.trade(outTradeNo)).toMatchObject({ status: 'PAID', transactionId: body.transactionId });
    const trade = await fetch(`${gateway.url}/sandbox/trades/${outTradeNo}`);
    expect(((await trade.json()) as { status: string }).status).toBe('PAID');
    const unknown = await fetch(`${gateway.url}/sandbox/pay/NEVER_CREATED_4`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('TRADE_NOT_FOUND');
  });

  it('returns a copy from trade(): changing it changes nothing in the sandbox', async () => {
    const outTradeNo = nextOutTradeNo();
    await wechatClient().transactions_app(order(outTradeNo, 700));
    const copy = gateway.trade(outTradeNo)!;
    copy.amountFen = 1;
    copy.status = 'PAID';
    expect(gateway.trade(outTradeNo)).toMatchObject({ amountFen: 700, status: 'UNPAID' });
  });
});

describe('WeChat failNext', () => {
  it("'500' answers 500 SYSTEM_ERROR without creating anything, once per time asked", async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    gateway.failNext('wechat.prepay', 2, '500');
    for (let i = 0; i < 2; i += 1) {
      const failed = await pay.transactions_app(order(outTradeNo));
      expect(failed.status).toBe(500);
      expect(errorOf(failed).code).toBe('SYSTEM_ERROR');
      expect(gateway.trade(outTradeNo)).toBeUndefined();
    }
    expect((await pay.transactions_app(order(outTradeNo))).status).toBe(200);
  });

  it("'drop' processes the request and cuts the connection: the client sees no status", async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    gateway.failNext('wechat.prepay', 1, 'drop');
    const dropped: WechatHttpResult = await pay.transactions_app(order(outTradeNo));
    expect(dropped.status).toBeUndefined();
    expect(dropped.errRaw?.code).toEqual(expect.any(String));
    const created = gateway.trade(outTradeNo);
    expect(created?.status).toBe('UNPAID');
    // The retry the app must make gets the prepay_id it never saw.
    expect((await pay.transactions_app(order(outTradeNo))).data.prepayid).toBe(created?.prepayId);

    gateway.failNext('wechat.close', 1, 'drop');
    expect((await pay.close(outTradeNo)).status).toBeUndefined();
    expect(gateway.trade(outTradeNo)?.status).toBe('CLOSED');
  });

  it('fails only the route asked for', async () => {
    const pay = wechatClient();
    const outTradeNo = nextOutTradeNo();
    await pay.transactions_app(order(outTradeNo));
    gateway.failNext('wechat.query');
    expect((await pay.close(outTradeNo)).status).toBe(204);
    expect((await pay.query({ out_trade_no: outTradeNo })).status).toBe(500);
    expect((await pay.query({ out_trade_no: outTradeNo })).status).toBe(200);
  });
});
