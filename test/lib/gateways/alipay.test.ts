/**
 * The Alipay adapter on canned openapi answers, signed with the sandbox's Alipay key exactly as
 * Alipay signs (test/support/cannedAnswers.ts): every trade_status and sub_code it maps, the close
 * that has to ask which way a TRADE_STATUS_ERROR went, and every answer it must not vouch for.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import { AlipayGateway } from '../../../lib/gateways/alipay';
import { verifyAlipayNotification } from '../../../lib/gateways/alipaySignature';
import { GatewayError, TradeCloseRefused } from '../../../lib/gateways/paymentGateway';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { alipaySignContent, signRsaSha256, verifyRsaSha256 } from '../../../scripts/sandbox/signing';
import { type AlipaySigning, alipayAnswer, alipayErrorNode, alipayTradeNode, alipayTradeNotExistNode } from '../../support/cannedAnswers';
import { type CannedGateway, startCannedGateway } from '../../support/cannedGateway';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const QUERY = 'alipay.trade.query';
const CLOSE = 'alipay.trade.close';

let creds: SandboxCredentials['alipay'];
let server: CannedGateway;
let gateway: AlipayGateway;
let seq = 0;
function nextOutTradeNo(): string {
  seq += 1;
  return `502T${NOW.getTime()}${seq}`;
}

function alipayGateway(over: { gatewayUrl?: string; appPrivateKeyPem?: string } = {}): AlipayGateway {
  return new AlipayGateway({
    appId: creds.app_id,
    appPrivateKeyPem: over.appPrivateKeyPem ?? creds.app_private_key_pem,
    alipayPublicKeyPem: creds.alipay_public_key_pem,
    gatewayUrl: over.gatewayUrl ?? `${server.url}/gateway.do`,
    notifyUrl: 'https://pay.example.com/notify/alipay',
    now: () => NOW,
  });
}

/** alipay-sdk itself, the yardstick of what the adapter signs and verifies with node:crypto. */
const alipaySdk = (appPrivateKeyPem = creds.app_private_key_pem) =>
  new AlipaySdk({
    appId: creds.app_id,
    privateKey: appPrivateKeyPem,
    keyType: appPrivateKeyPem.includes('BEGIN PRIVATE KEY') ? 'PKCS8' : 'PKCS1',
    alipayPublicKey: creds.alipay_public_key_pem,
  });

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const answer = (method: string, node: Record<string, unknown>, signing?: AlipaySigning) => alipayAnswer(creds, method, node, signing);
const queryAnswer = (outTradeNo: string, tradeStatus: string, over: Partial<Parameters<typeof alipayTradeNode>[0]> = {}) =>
  answer(QUERY, alipayTradeNode({ outTradeNo, tradeStatus, ...over }));
const tradeStatusError = () => answer(CLOSE, alipayErrorNode('40004', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法'));

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).alipay;
  server = await startCannedGateway();
  gateway = alipayGateway();
});
afterEach(() => server.reset());
afterAll(() => server.close());

describe('createPayParam', () => {
  const request = (outTradeNo: string, subject = '保温杯') => ({ outTradeNo, amountFen: 8800, subject, expiresAt: new Date(NOW.getTime() + 30 * 60_000) });
  const appPublicKey = () => createPublicKey(creds.app_public_key_pem);

  /** The order string's fields, checked as Alipay checks them: RSA2 with the app's public key over the sorted fields. */
  function openOrderString(orderString: string): Record<string, string> {
    const fields = Object.fromEntries(new URLSearchParams(orderString));
    expect(verifyRsaSha256(appPublicKey(), alipaySignContent(fields, ['sign']), fields.sign)).toBe(true);
    return fields;
  }

  it('signs the APP order string locally with the app key, in Beijing time, without calling Alipay', async () => {
    const outTradeNo = nextOutTradeNo();
    const fields = openOrderString(await gateway.createPayParam(request(outTradeNo)));
    expect(fields).toMatchObject({
      app_id: creds.app_id,
      method: 'alipay.trade.app.pay',
      charset: 'utf-8',
      sign_type: 'RSA2',
      version: '1.0',
      timestamp: '2026-11-28 20:00:00',
      notify_url: 'https://pay.example.com/notify/alipay',
    });
    expect(JSON.parse(fields.biz_content)).toEqual({
      out_trade_no: outTradeNo,
      total_amount: '88.00',
      subject: '保温杯',
      product_code: 'QUICK_MSECURITY_PAY',
      time_expire: '2026-11-28 20:30:00',
    });
    expect(server.requests).toHaveLength(0);
  });

  it("writes the order string alipay-sdk's sdkExecute writes, byte for byte", async () => {
    const outTradeNo = nextOutTradeNo();
    const subject = '保温杯 100% 纯棉 +1 & =';
    const expected = alipaySdk().sdkExecute('alipay.trade.app.pay', {
      notifyUrl: 'https://pay.example.com/notify/alipay',
      timestamp: '2026-11-28 20:00:00',
      bizContent: { outTradeNo, totalAmount: '88.00', subject, productCode: 'QUICK_MSECURITY_PAY', timeExpire: '2026-11-28 20:30:00' },
    });
    expect(await gateway.createPayParam(request(outTradeNo, subject))).toBe(expected);
  });

  it('cuts the subject to the 256 characters Alipay takes', async () => {
    const fields = openOrderString(await gateway.createPayParam(request(nextOutTradeNo(), '杯'.repeat(300))));
    expect(JSON.parse(fields.biz_content).subject).toBe('杯'.repeat(256));
  });

  it('takes the app private key as PKCS#8 as well as PKCS#1', async () => {
    const pkcs8 = createPrivateKey(creds.app_private_key_pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(pkcs8).toContain('BEGIN PRIVATE KEY');
    openOrderString(await alipayGateway({ appPrivateKeyPem: pkcs8 }).createPayParam(request(nextOutTradeNo())));
    // Built here, not in beforeAll: Stryker's per-test coverage does not see code that a hook runs.
    const pkcs1 = createPrivateKey(creds.app_private_key_pem).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toContain('BEGIN RSA PRIVATE KEY');
    openOrderString(await alipayGateway({ appPrivateKeyPem: pkcs1 }).createPayParam(request(nextOutTradeNo())));
  });
});

describe('queryTrade maps each trade_status Alipay signs', () => {
  it('asks alipay.trade.query for the out_trade_no, signed, with the time in Beijing', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(queryAnswer(outTradeNo, 'WAIT_BUYER_PAY'));
    await gateway.queryTrade(outTradeNo);
    expect(server.requests).toHaveLength(1);
    const { method, path, params } = server.requests[0];
    expect({ method, path }).toEqual({ method: 'POST', path: '/gateway.do' });
    expect(params).toMatchObject({ app_id: creds.app_id, method: QUERY, sign_type: 'RSA2', timestamp: '2026-11-28 20:00:00' });
    expect(JSON.parse(params.biz_content)).toEqual({ out_trade_no: outTradeNo });
    expect(verifyRsaSha256(createPublicKey(creds.app_public_key_pem), alipaySignContent(params, ['sign']), params.sign)).toBe(true);
  });

  it.each([
    ['TRADE_SUCCESS', {}],
    ['TRADE_FINISHED', { windowClosed: true }],
  ])('%s is paid, with the trade_no, amount in fen and send_pay_date Alipay gives (finished: past its refund period)', async (tradeStatus, finished) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(
      queryAnswer(outTradeNo, tradeStatus, { totalAmount: '88.01', tradeNo: '2026112822001412345678901234', paidAt: new Date('2026-11-28T12:00:01Z') }),
    );
    expect(await gateway.queryTrade(outTradeNo)).toEqual({
      state: 'paid',
      transactionId: '2026112822001412345678901234',
      amountFen: 8801,
      paidAt: '2026-11-28 20:00:01',
      ...finished,
    });
  });

  it('WAIT_BUYER_PAY is unpaid', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(queryAnswer(outTradeNo, 'WAIT_BUYER_PAY'));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'unpaid' });
  });

  it('TRADE_CLOSED is closed', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(queryAnswer(outTradeNo, 'TRADE_CLOSED'));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'closed' });
  });

  it.each(['TRADE_PENDING', 'trade_success', ''])('an unknown trade_status (%j) is a GatewayError, never a guess', async (tradeStatus) => {
    const outTradeNo = nextOutTradeNo();
    server.queue(queryAnswer(outTradeNo, tradeStatus));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError(`alipay query: unknown trade_status ${tradeStatus}`));
  });

  it('a signed ACQ.TRADE_NOT_EXIST is not_found', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(answer(QUERY, alipayTradeNotExistNode(outTradeNo)));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'not_found' });
  });

  it('a forged ACQ.TRADE_NOT_EXIST is a GatewayError: "not found" releases the points', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(answer(QUERY, alipayTradeNotExistNode(outTradeNo), { signWithKeyPem: otherKeyPem }));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toBeInstanceOf(GatewayError);
  });

  it.each([
    ['40004 ACQ.SYSTEM_ERROR', '40004', 'ACQ.SYSTEM_ERROR', '系统错误'],
    ['40004 ACQ.INVALID_PARAMETER', '40004', 'ACQ.INVALID_PARAMETER', '参数无效'],
    ['20000 isp.unknow-error', '20000', 'isp.unknow-error', '系统繁忙'],
    ['40002 isv.invalid-signature', '40002', 'isv.invalid-signature', '验签出错'],
    ['40004 without a sub_code', '40004', undefined, undefined],
  ])('a signed %s is a GatewayError naming it', async (_what, code, subCode, subMsg) => {
    server.queue(answer(QUERY, alipayErrorNode(code, subCode, subMsg)));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(`alipay query failed: ${code} ${subCode ?? ''}`));
  });
});

describe('queryTrade refuses what it cannot vouch for', () => {
  it.each<[string, (node: Record<string, unknown>) => AlipaySigning]>([
    ['signed with another key', () => ({ signWithKeyPem: otherKeyPem })],
    ['changed after it was signed', (node) => ({ signedNode: { ...node, trade_status: 'WAIT_BUYER_PAY' } })],
    ['not signed at all', () => ({ unsigned: true })],
  ])('a TRADE_SUCCESS %s is a GatewayError, never paid', async (_how, signing) => {
    const outTradeNo = nextOutTradeNo();
    const node = alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_SUCCESS' });
    server.queue(answer(QUERY, node, signing(node)));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toBeInstanceOf(GatewayError);
  });

  it('a TRADE_SUCCESS signed under another method is a GatewayError', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(answer(CLOSE, alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_SUCCESS' })));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError(`alipay ${QUERY}: AlipayRequestError`));
  });

  it('a signed TRADE_SUCCESS about another out_trade_no (a replay) is a GatewayError', async () => {
    server.queue(queryAnswer('502T1', 'TRADE_SUCCESS'));
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError('alipay query answered for another trade'));
  });

  it('a TRADE_SUCCESS without trade_no is a GatewayError, as a notification without it is refused', async () => {
    const outTradeNo = nextOutTradeNo();
    const { trade_no: _tradeNo, ...node } = alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_SUCCESS' });
    server.queue(answer(QUERY, node));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toEqual(new GatewayError('alipay query: a paid trade without trade_no or a readable total_amount'));
  });

  it('a TRADE_SUCCESS without send_pay_date is paid, its time left to the clock of whoever records it', async () => {
    const outTradeNo = nextOutTradeNo();
    const { send_pay_date: _paidAt, ...node } = alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_SUCCESS' });
    server.queue(answer(QUERY, node));
    expect(await gateway.queryTrade(outTradeNo)).toEqual({ state: 'paid', transactionId: node.trade_no, amountFen: 1234, paidAt: '' });
  });

  it('a signed TRADE_SUCCESS whose total_amount is not yuan is a GatewayError', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(queryAnswer(outTradeNo, 'TRADE_SUCCESS', { totalAmount: '88.001' }));
    await expect(gateway.queryTrade(outTradeNo)).rejects.toBeInstanceOf(GatewayError);
  });

  it.each([
    ['an HTTP 500', { status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'Internal Server Error' }],
    ['an HTTP 502 with no body', { status: 502, body: '' }],
    ['a 200 with no body', { status: 200, body: '' }],
    ['a 200 that is not JSON', { status: 200, headers: { 'Content-Type': 'text/html' }, body: '<html>维护中</html>' }],
    ["a 200 without the method's _response", { status: 200, headers: { 'Content-Type': 'application/json' }, body: '{"sign":"x"}' }],
  ])('%s is a GatewayError', async (_what, reply) => {
    server.queue(reply);
    const failure = (await gateway.queryTrade(nextOutTradeNo()).catch((e: unknown) => e)) as GatewayError;
    expect(failure).toEqual(new GatewayError(`alipay ${QUERY}: AlipayRequestError`));
    // No trace id in the answer: the cause names the SDK error's kind and nothing else.
    expect(failure.cause).toMatchObject({ name: 'AlipayRequestError', message: 'AlipayRequestError' });
  });

  it('a connection dropped on every try is a GatewayError (the HTTP client retries it once)', async () => {
    server.always('drop');
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(`alipay ${QUERY}: AlipayRequestError`));
    expect(server.requests).toHaveLength(2);
  });

  it('a connection cut off in the middle of its answer is a GatewayError', async () => {
    server.always('cut');
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });

  it('a gateway that never answers is given up after 5 s, as a GatewayError', async () => {
    server.queue('hang');
    const started = Date.now();
    await expect(gateway.queryTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_900);
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it("keeps the answer out of the GatewayError and its cause (it can name the buyer), and keeps Alipay's trace id", async () => {
    const outTradeNo = nextOutTradeNo();
    const node = alipayTradeNode({ outTradeNo, tradeStatus: 'TRADE_SUCCESS' });
    const forged = answer(QUERY, node, { signWithKeyPem: otherKeyPem }) as { status: number; headers: Record<string, string>; body: string };
    server.queue({ ...forged, headers: { ...forged.headers, trace_id: '0b5f3a2e17648420000001234e7d2b' } });
    const failure = (await gateway.queryTrade(outTradeNo).catch((e: unknown) => e)) as GatewayError;
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure.cause).toMatchObject({ name: 'AlipayRequestError', message: 'AlipayRequestError, traceId 0b5f3a2e17648420000001234e7d2b' });
    expect(JSON.stringify({ message: failure.message, cause: String(failure.cause), ...(failure.cause as object) })).not.toContain(String(node.buyer_logon_id));
  });
});

describe('closeTrade', () => {
  it('a signed 10000 is closed; the close names the out_trade_no', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(answer(CLOSE, { code: '10000', msg: 'Success', out_trade_no: outTradeNo, trade_no: '2026112822001412345678901234' }));
    await expect(gateway.closeTrade(outTradeNo)).resolves.toBeUndefined();
    expect(server.requests.map((r) => r.params.method)).toEqual([CLOSE]);
    expect(JSON.parse(server.requests[0].params.biz_content)).toEqual({ out_trade_no: outTradeNo });
  });

  it('a signed ACQ.TRADE_NOT_EXIST counts as closed: a trade Alipay never saw cannot be paid', async () => {
    server.queue(answer(CLOSE, alipayErrorNode('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在')));
    await expect(gateway.closeTrade(nextOutTradeNo())).resolves.toBeUndefined();
    expect(server.requests).toHaveLength(1);
  });

  it('a signed ACQ.TRADE_STATUS_ERROR (a paid trade, or one closed already) is a GatewayError in one call: the caller asks the query, a call it counts', async () => {
    const outTradeNo = nextOutTradeNo();
    server.queue(tradeStatusError());
    const refused = await gateway.closeTrade(outTradeNo).catch((error: unknown) => error);
    expect(refused).toEqual(new TradeCloseRefused('alipay close refused: 40004 ACQ.TRADE_STATUS_ERROR'));
    expect(refused).toBeInstanceOf(GatewayError);
    // Its name is what a log line shows of it.
    expect((refused as Error).name).toBe('TradeCloseRefused');
    expect(server.requests.map((r) => r.params.method)).toEqual([CLOSE]);
  });

  it("a close whose answer was lost is sent again by the HTTP client, which finds it closed: ACQ.TRADE_STATUS_ERROR, for the caller's query", async () => {
    // The first close went through, its connection dropped; the HTTP client sends it again.
    const outTradeNo = nextOutTradeNo();
    server.queue('drop', tradeStatusError());
    await expect(gateway.closeTrade(outTradeNo)).rejects.toEqual(new TradeCloseRefused('alipay close refused: 40004 ACQ.TRADE_STATUS_ERROR'));
    expect(server.requests.map((r) => r.params.method)).toEqual([CLOSE, CLOSE]);
  });

  it.each([
    ['40004 ACQ.SYSTEM_ERROR', '40004', 'ACQ.SYSTEM_ERROR', '系统错误'],
    ['20000 isp.unknow-error', '20000', 'isp.unknow-error', '系统繁忙'],
    ['40004 ACQ.REASON_TRADE_STATUS_INVALID', '40004', 'ACQ.REASON_TRADE_STATUS_INVALID', '交易状态异常'],
    ['40004 without a sub_code', '40004', undefined, undefined],
  ])('a signed %s is a GatewayError: the trade may still be payable', async (_what, code, subCode, subMsg) => {
    server.queue(answer(CLOSE, alipayErrorNode(code, subCode, subMsg)));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(`alipay close failed: ${code} ${subCode ?? ''}`));
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    ['10000', alipayErrorNode('10000', undefined, undefined)],
    ['ACQ.TRADE_NOT_EXIST', alipayErrorNode('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在')],
  ])('a forged %s is a GatewayError, never closed', async (_what, node) => {
    server.queue(answer(CLOSE, node, { signWithKeyPem: otherKeyPem }));
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toEqual(new GatewayError(`alipay ${CLOSE}: AlipayRequestError`));
  });

  it('an HTTP 502 is a GatewayError, never closed', async () => {
    server.queue({ status: 502, body: 'Bad Gateway' });
    await expect(gateway.closeTrade(nextOutTradeNo())).rejects.toBeInstanceOf(GatewayError);
  });
});

describe('verifyAlipayNotification', () => {
  it("accepts Alipay's RSA2 signature over the decoded fields, and nothing changed since", () => {
    const alipayPublicKey = createPublicKey(creds.alipay_public_key_pem);
    const fields: Record<string, string> = {
      app_id: creds.app_id,
      out_trade_no: '502T1',
      total_amount: '88.00',
      trade_status: 'TRADE_SUCCESS',
      charset: 'utf-8',
      sign_type: 'RSA2',
    };
    const sign = signRsaSha256(creds.alipay_private_key_pem, alipaySignContent(fields, ['sign', 'sign_type']));
    expect(verifyAlipayNotification({ ...fields, sign }, alipayPublicKey)).toBe(true);
    expect(verifyAlipayNotification({ ...fields, total_amount: '0.01', sign }, alipayPublicKey)).toBe(false);
    expect(verifyAlipayNotification({ ...fields, sign: signRsaSha256(otherKeyPem, alipaySignContent(fields, ['sign', 'sign_type'])) }, alipayPublicKey)).toBe(
      false,
    );
  });
});

describe('verifyAlipayNotification (node:crypto, the notify path) agrees with alipay-sdk on every case', () => {
  const base: Record<string, string> = {
    notify_type: 'trade_status_sync',
    app_id: 'placeholder',
    out_trade_no: '502T1',
    total_amount: '88.00',
    trade_status: 'TRADE_SUCCESS',
    charset: 'utf-8',
    sign_type: 'RSA2',
  };
  const signed = (fields: Record<string, string>, exclude: string[], keyPem = creds.alipay_private_key_pem) => ({
    ...fields,
    sign: signRsaSha256(keyPem, alipaySignContent(fields, exclude, { keepEmpty: true })),
  });
  const cases: [string, () => Record<string, string>, boolean][] = [
    ['signed without sign and sign_type (V1, as Alipay signs notifications)', () => signed({ ...base, app_id: creds.app_id }, ['sign', 'sign_type']), true],
    ['signed with sign_type kept (V2)', () => signed({ ...base, app_id: creds.app_id }, ['sign']), true],
    ['empty values signed', () => signed({ ...base, app_id: creds.app_id, passback_params: '', body: '' }, ['sign', 'sign_type']), true],
    ['values with % + and spaces', () => signed({ ...base, app_id: creds.app_id, subject: '100% 纯棉 T恤 +1' }, ['sign', 'sign_type']), true],
    ['a field changed after signing', () => ({ ...signed({ ...base, app_id: creds.app_id }, ['sign', 'sign_type']), total_amount: '0.01' }), false],
    ['a field added after signing', () => ({ ...signed({ ...base, app_id: creds.app_id }, ['sign', 'sign_type']), refund_fee: '88.00' }), false],
    ['signed by another key', () => signed({ ...base, app_id: creds.app_id }, ['sign', 'sign_type'], otherKeyPem), false],
    ['no signature', () => ({ ...base, app_id: creds.app_id }), false],
  ];
  it.each(cases)('%s', async (_title, build, expected) => {
    const fields = build();
    // checkNotifySignV2: checkNotifySign would URL-decode the values a second time.
    expect(alipaySdk().checkNotifySignV2(fields)).toBe(expected);
    expect(verifyAlipayNotification(fields, createPublicKey(creds.alipay_public_key_pem))).toBe(expected);
  });
});
