/**
 * Alipay refunds through the adapter (`refund`, `queryRefund`) on canned openapi answers, signed with the
 * sandbox's Alipay key exactly as Alipay signs (test/support/cannedAnswers.ts): what Alipay is asked, the
 * refund answers that say nothing final by themselves (fund_change N, ACQ.TRADE_STATUS_ERROR) and the
 * query `sendRefund` asks for each as a call of its own, the refusals that end a refund number and those
 * worth sending again, and every answer it must not vouch for.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { AlipayGateway } from '../../../lib/gateways/alipay';
import { GatewayError, type RefundRequest } from '../../../lib/gateways/paymentGateway';
import { sendRefund } from '../../../lib/pay/followUpRefund';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { alipaySignContent, verifyRsaSha256 } from '../../../scripts/sandbox/signing';
import {
  type AlipaySigning,
  alipayAnswer,
  alipayErrorNode,
  alipayRefundNode,
  alipayRefundQueryNode,
  alipayTradeNode,
  alipayTradeNotExistNode,
} from '../../support/cannedAnswers';
import { type CannedGateway, startCannedGateway } from '../../support/cannedGateway';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const REFUND = 'alipay.trade.refund';
const REFUND_QUERY = 'alipay.trade.fastpay.refund.query';
const QUERY = 'alipay.trade.query';

let creds: SandboxCredentials['alipay'];
let server: CannedGateway;
let gateway: AlipayGateway;
let seq = 0;

/** A refund of 30.00 yuan out of a payment of 88.00, under numbers no other test uses. */
function nextRequest(over: Partial<RefundRequest> = {}): RefundRequest {
  seq += 1;
  const outTradeNo = `502T${NOW.getTime()}${seq}`;
  return { outTradeNo, outRefundNo: `${outTradeNo}R1`, refundFen: 3000, totalFen: 8800, reason: '商品已售完', ...over };
}

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).alipay;
  server = await startCannedGateway();
  gateway = new AlipayGateway({
    appId: creds.app_id,
    appPrivateKeyPem: creds.app_private_key_pem,
    alipayPublicKeyPem: creds.alipay_public_key_pem,
    gatewayUrl: `${server.url}/gateway.do`,
    notifyUrl: 'https://pay.example.com/notify/alipay',
    now: () => NOW,
  });
});
afterEach(() => server.reset());
afterAll(() => server.close());

const otherKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const answer = (method: string, node: Record<string, unknown>, signing?: AlipaySigning) => alipayAnswer(creds, method, node, signing);
/** alipay.trade.refund's 10000 for `request`. */
const refunded = (request: RefundRequest, fundChange: string, over: Record<string, unknown> = {}, signing?: AlipaySigning) =>
  answer(REFUND, { ...alipayRefundNode({ outTradeNo: request.outTradeNo, fundChange }), ...over }, signing);
/** A refusal of alipay.trade.refund, with the figures Alipay adds to it. */
const refused = (subCode: string, subMsg: string, signing?: AlipaySigning) =>
  answer(REFUND, alipayErrorNode('40004', subCode, subMsg, { refund_fee: '0.00', send_back_fee: '0.00' }), signing);
/** The refund query's answer for `request`: REFUND_SUCCESS of its amount, or (`refundStatus` undefined) no refund carried out. */
const queried = (request: RefundRequest, refundStatus: string | undefined, over: Record<string, unknown> = {}, signing?: AlipaySigning) =>
  answer(
    REFUND_QUERY,
    { ...alipayRefundQueryNode({ outTradeNo: request.outTradeNo, outRequestNo: request.outRefundNo, refundStatus, refundAmount: '30.00' }), ...over },
    signing,
  );
const tradeQueried = (request: RefundRequest, tradeStatus: string) => answer(QUERY, alipayTradeNode({ outTradeNo: request.outTradeNo, tradeStatus }));
const tradeStatusError = () => refused('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
const methods = () => server.requests.map((r) => r.params.method);

/** A GatewayError for an answer alipay-sdk would not take (a bad or missing sign, an HTTP error), naming the method called. */
async function expectRefusedBySdk(settling: Promise<unknown>, method: string): Promise<void> {
  const failure = await settling.catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(GatewayError);
  expect((failure as Error).message).toMatch(new RegExp(`^alipay ${method.replace(/\./g, '\\.')}: \\w+Error$`));
}

describe('refund asks Alipay for the refund', () => {
  it('calls alipay.trade.refund, signed, in Beijing time, with out_trade_no, the refund number as out_request_no, the amount in yuan and the reason', async () => {
    const request = nextRequest();
    server.queue(refunded(request, 'Y'));
    await gateway.refund(request);

    expect(server.requests).toHaveLength(1);
    const { method, path, params } = server.requests[0];
    expect({ method, path }).toEqual({ method: 'POST', path: '/gateway.do' });
    expect(params).toMatchObject({ app_id: creds.app_id, method: REFUND, sign_type: 'RSA2', timestamp: '2026-11-28 20:00:00' });
    expect(JSON.parse(params.biz_content)).toEqual({
      out_trade_no: request.outTradeNo,
      out_request_no: request.outRefundNo,
      refund_amount: '30.00',
      refund_reason: '商品已售完',
    });
    expect(verifyRsaSha256(createPublicKey(creds.app_public_key_pem), alipaySignContent(params, ['sign']), params.sign)).toBe(true);
  });

  it.each([
    [1, '0.01'],
    [8801, '88.01'],
  ])('sends %i fen as refund_amount %s yuan', async (refundFen, yuan) => {
    const request = nextRequest({ refundFen });
    server.queue(refunded(request, 'Y'));
    await gateway.refund(request);
    expect(JSON.parse(server.requests[0].params.biz_content).refund_amount).toBe(yuan);
  });

  it('cuts the reason to the 256 characters Alipay takes', async () => {
    const request = nextRequest({ reason: '退'.repeat(300) });
    server.queue(refunded(request, 'Y'));
    await gateway.refund(request);
    expect(JSON.parse(server.requests[0].params.biz_content).refund_reason).toBe('退'.repeat(256));
  });

  it('cuts between characters: an emoji at the limit is kept whole, never half', async () => {
    const request = nextRequest({ reason: `${'退'.repeat(255)}😀😀` });
    server.queue(refunded(request, 'Y'));
    await gateway.refund(request);
    expect(JSON.parse(server.requests[0].params.biz_content).refund_reason).toBe(`${'退'.repeat(255)}😀`);
  });
});

describe('refund: a signed 10000', () => {
  it('with fund_change Y is succeeded, refunded at gmt_refund_pay (Beijing) as an instant, without asking again', async () => {
    const request = nextRequest();
    server.queue(refunded(request, 'Y', { gmt_refund_pay: '2026-11-28 20:00:05' }));
    expect(await gateway.refund(request)).toEqual({ state: 'succeeded', refundedAt: '2026-11-28T12:00:05.000Z' });
    expect(methods()).toEqual([REFUND]);
  });

  it('for another out_trade_no (a replay) is a GatewayError, never succeeded', async () => {
    const request = nextRequest();
    server.queue(refunded(request, 'Y', { out_trade_no: `${request.outTradeNo}2` }));
    await expect(gateway.refund(request)).rejects.toEqual(new GatewayError('alipay refund answered for another trade'));
  });

  it("with fund_change N (no money moved by this call) is unconfirmed: one call, the query is the caller's own", async () => {
    const request = nextRequest();
    server.queue(refunded(request, 'N'));
    expect(await gateway.refund(request)).toEqual({ state: 'unconfirmed' });
    expect(methods()).toEqual([REFUND]);
  });

  it('without fund_change is no proof of a refund either: unconfirmed', async () => {
    const request = nextRequest();
    const { fund_change: _fundChange, ...node } = alipayRefundNode({ outTradeNo: request.outTradeNo, fundChange: 'Y' });
    server.queue(answer(REFUND, node));
    expect(await gateway.refund(request)).toEqual({ state: 'unconfirmed' });
    expect(methods()).toEqual([REFUND]);
  });
});

describe('sendRefund: fund_change N asks the refund query, a call of its own', () => {
  it('for this out_request_no, with gmt_refund_pay', async () => {
    const request = nextRequest();
    server.queue(refunded(request, 'N'), queried(request, 'REFUND_SUCCESS'));
    await sendRefund(gateway, request);
    expect(methods()).toEqual([REFUND, REFUND_QUERY]);
    expect(JSON.parse(server.requests[1].params.biz_content)).toEqual({
      out_trade_no: request.outTradeNo,
      out_request_no: request.outRefundNo,
      query_options: ['gmt_refund_pay'],
    });
  });

  it('a query that says REFUND_SUCCESS is succeeded at the refund time the query gives', async () => {
    const request = nextRequest();
    server.queue(
      refunded(request, 'N', { gmt_refund_pay: '2026-11-28 20:00:05' }),
      queried(request, 'REFUND_SUCCESS', { gmt_refund_pay: '2026-11-27 09:30:00' }),
    );
    expect(await sendRefund(gateway, request)).toEqual({ state: 'succeeded', refundedAt: '2026-11-27T01:30:00.000Z' });
  });

  it.each<[string, (request: RefundRequest) => ReturnType<typeof answer>]>([
    ['no REFUND_SUCCESS', (request) => queried(request, undefined)],
    ['ACQ.TRADE_NOT_EXIST', (request) => answer(REFUND_QUERY, alipayTradeNotExistNode(request.outTradeNo))],
  ])('a query that says %s is processing, never not_found', async (_says, query) => {
    const request = nextRequest();
    server.queue(refunded(request, 'N'), query(request));
    expect(await sendRefund(gateway, request)).toEqual({ state: 'processing' });
  });

  it.each<[string, (request: RefundRequest) => ReturnType<typeof answer>]>([
    ['fails (ACQ.SYSTEM_ERROR)', () => answer(REFUND_QUERY, alipayErrorNode('40004', 'ACQ.SYSTEM_ERROR', '系统错误'))],
    ['says REFUND_SUCCESS of another amount', (request) => queried(request, 'REFUND_SUCCESS', { refund_amount: '30.01' })],
    ['forges REFUND_SUCCESS', (request) => queried(request, 'REFUND_SUCCESS', {}, { signWithKeyPem: otherKeyPem })],
  ])('a query that %s is a GatewayError saying what the query was asked after', async (_how, query) => {
    const request = nextRequest();
    server.queue(refunded(request, 'N'), query(request));
    const failure = await sendRefund(gateway, request).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as Error).message).toMatch(/^alipay refund taken without moving money; then alipay /);
  });
});

describe('refund: ACQ.TRADE_STATUS_ERROR', () => {
  it("is refused for the trade's state: one call, the trade query is the caller's own", async () => {
    const request = nextRequest();
    server.queue(tradeStatusError());
    expect(await gateway.refund(request)).toEqual({ state: 'refused_for_trade_state', reason: 'ACQ.TRADE_STATUS_ERROR' });
    expect(methods()).toEqual([REFUND]);
  });
});

describe('sendRefund: ACQ.TRADE_STATUS_ERROR asks the trade query why, a call of its own', () => {
  it('asks alipay.trade.query for the out_trade_no', async () => {
    const request = nextRequest();
    server.queue(tradeStatusError(), tradeQueried(request, 'TRADE_CLOSED'));
    await sendRefund(gateway, request);
    expect(methods()).toEqual([REFUND, QUERY]);
    expect(JSON.parse(server.requests[1].params.biz_content)).toEqual({ out_trade_no: request.outTradeNo });
  });

  it('TRADE_FINISHED is failed for good, the refund window closed', async () => {
    const request = nextRequest();
    server.queue(tradeStatusError(), tradeQueried(request, 'TRADE_FINISHED'));
    expect(await sendRefund(gateway, request)).toEqual({
      state: 'failed',
      reason: 'ACQ.TRADE_STATUS_ERROR: paid, past its refund period',
      windowClosed: true,
    });
  });

  it('TRADE_CLOSED is failed for good: all of it was refunded already, the window is not the reason', async () => {
    const request = nextRequest();
    server.queue(tradeStatusError(), tradeQueried(request, 'TRADE_CLOSED'));
    expect(await sendRefund(gateway, request)).toEqual({ state: 'failed', reason: 'ACQ.TRADE_STATUS_ERROR: closed, refunded in full already' });
  });

  it.each<[string, (request: RefundRequest) => ReturnType<typeof answer>, string]>([
    ['TRADE_SUCCESS', (request) => tradeQueried(request, 'TRADE_SUCCESS'), 'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is paid'],
    ['WAIT_BUYER_PAY', (request) => tradeQueried(request, 'WAIT_BUYER_PAY'), 'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is unpaid'],
    [
      'ACQ.TRADE_NOT_EXIST',
      (request) => answer(QUERY, alipayTradeNotExistNode(request.outTradeNo)),
      'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is not_found',
    ],
    [
      'an unknown trade_status',
      (request) => tradeQueried(request, 'TRADE_PENDING'),
      'alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay query: unknown trade_status TRADE_PENDING',
    ],
    // A genuine answer replayed from another trade must not end this refund for good.
    [
      'TRADE_FINISHED of another trade',
      () => answer(QUERY, alipayTradeNode({ outTradeNo: 'ANOTHER1T1', tradeStatus: 'TRADE_FINISHED' })),
      'alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay query answered for another trade',
    ],
    [
      'TRADE_CLOSED of another trade',
      () => answer(QUERY, alipayTradeNode({ outTradeNo: 'ANOTHER1T1', tradeStatus: 'TRADE_CLOSED' })),
      'alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay query answered for another trade',
    ],
    // Only a 10000 answers the question, whatever else an error answer carries.
    [
      'an error that also names this trade as TRADE_FINISHED',
      (request) =>
        answer(QUERY, {
          code: '20000',
          msg: 'Service Currently Unavailable',
          sub_code: 'aop.unknow-error',
          out_trade_no: request.outTradeNo,
          trade_status: 'TRADE_FINISHED',
        }),
      'alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay query failed: 20000 aop.unknow-error',
    ],
  ])('%s is a GatewayError: the same refund number is sent again later', async (_says, query, message) => {
    const request = nextRequest();
    server.queue(tradeStatusError(), query(request));
    await expect(sendRefund(gateway, request)).rejects.toEqual(new GatewayError(message));
  });

  it('a forged TRADE_FINISHED is a GatewayError, never failed', async () => {
    const request = nextRequest();
    server.queue(
      tradeStatusError(),
      answer(QUERY, alipayTradeNode({ outTradeNo: request.outTradeNo, tradeStatus: 'TRADE_FINISHED' }), { signWithKeyPem: otherKeyPem }),
    );
    await expect(sendRefund(gateway, request)).rejects.toEqual(
      new GatewayError(`alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay ${QUERY}: AlipayRequestError`),
    );
  });
});

describe('refund: what another refusal means', () => {
  it('ACQ.TRADE_HAS_FINISHED is failed for good, the refund window closed, without asking the query', async () => {
    server.queue(refused('ACQ.TRADE_HAS_FINISHED', '交易已完结'));
    expect(await gateway.refund(nextRequest())).toEqual({ state: 'failed', reason: 'ACQ.TRADE_HAS_FINISHED', windowClosed: true });
    expect(methods()).toEqual([REFUND]);
  });

  it.each([
    ['ACQ.TRADE_NOT_EXIST', '交易不存在'],
    ['ACQ.TRADE_HAS_CLOSE', '交易已关闭'],
    ['ACQ.TRADE_NOT_ALLOW_REFUND', '当前交易不允许退款'],
    ['ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限'],
    ['ACQ.DISCORDANT_REPEAT_REQUEST', '不一致的请求'],
    ['ACQ.REASON_TRADE_REFUND_FEE_ERR', '退款金额无效'],
    ['ACQ.REFUND_FEE_ERROR', '交易退款金额有误'],
  ])('a signed %s is failed for good, the sub_code as the reason, without asking again', async (subCode, subMsg) => {
    server.queue(refused(subCode, subMsg));
    expect(await gateway.refund(nextRequest())).toEqual({ state: 'failed', reason: subCode });
    expect(methods()).toEqual([REFUND]);
  });

  it.each([
    ['40004', 'ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足'],
    ['40004', 'ACQ.SYSTEM_ERROR', '系统错误'],
    ['40004', 'ACQ.TRADE_FROZEN', '交易已冻结'],
    ['40004', 'ACQ.SOMETHING_NEW', '新的错误码'],
    ['20000', 'isp.unknow-error', '系统繁忙'],
    ['40002', 'isv.invalid-signature', '验签出错'],
    ['40004', undefined, undefined],
  ])('a signed %s %s is a GatewayError naming it: the same refund number is sent again later', async (code, subCode, subMsg) => {
    server.queue(answer(REFUND, alipayErrorNode(code, subCode, subMsg)));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError(`alipay refund failed: ${code} ${subCode ?? ''}`));
    expect(methods()).toEqual([REFUND]);
  });
});

describe('refund refuses what it cannot vouch for', () => {
  it.each<[string, (request: RefundRequest) => ReturnType<typeof answer>]>([
    ['a 10000 with fund_change Y signed with another key', (request) => refunded(request, 'Y', {}, { signWithKeyPem: otherKeyPem })],
    [
      'a 10000 whose fund_change was changed to Y after it was signed',
      (request) => {
        const node = alipayRefundNode({ outTradeNo: request.outTradeNo, fundChange: 'Y' });
        return answer(REFUND, node, { signedNode: { ...node, fund_change: 'N' } });
      },
    ],
    ['a 10000 with fund_change Y not signed at all', (request) => refunded(request, 'Y', {}, { unsigned: true })],
    [
      'a 10000 with fund_change Y signed under another method',
      (request) => answer(QUERY, alipayRefundNode({ outTradeNo: request.outTradeNo, fundChange: 'Y' })),
    ],
    ['a forged ACQ.TRADE_HAS_FINISHED', () => refused('ACQ.TRADE_HAS_FINISHED', '交易已完结', { signWithKeyPem: otherKeyPem })],
    ['a forged ACQ.TRADE_NOT_EXIST', () => refused('ACQ.TRADE_NOT_EXIST', '交易不存在', { signWithKeyPem: otherKeyPem })],
    ['an HTTP 502', () => ({ status: 502, body: 'Bad Gateway' })],
  ])('%s is a GatewayError, never succeeded or failed', async (_what, reply) => {
    const request = nextRequest();
    server.queue(reply(request));
    await expectRefusedBySdk(gateway.refund(request), REFUND);
  });

  it('a forged ACQ.TRADE_STATUS_ERROR is a GatewayError, without asking the trade query', async () => {
    server.queue(refused('ACQ.TRADE_STATUS_ERROR', '交易状态不合法', { signWithKeyPem: otherKeyPem }));
    await expect(gateway.refund(nextRequest())).rejects.toEqual(new GatewayError(`alipay ${REFUND}: AlipayRequestError`));
    expect(methods()).toEqual([REFUND]);
  });
});

describe('queryRefund', () => {
  it('asks alipay.trade.fastpay.refund.query for the out_trade_no and out_request_no, with gmt_refund_pay, signed, in Beijing time', async () => {
    const request = nextRequest();
    server.queue(queried(request, 'REFUND_SUCCESS'));
    await gateway.queryRefund(request);
    expect(server.requests).toHaveLength(1);
    const { params } = server.requests[0];
    expect(params).toMatchObject({ app_id: creds.app_id, method: REFUND_QUERY, sign_type: 'RSA2', timestamp: '2026-11-28 20:00:00' });
    expect(JSON.parse(params.biz_content)).toEqual({
      out_trade_no: request.outTradeNo,
      out_request_no: request.outRefundNo,
      query_options: ['gmt_refund_pay'],
    });
    expect(verifyRsaSha256(createPublicKey(creds.app_public_key_pem), alipaySignContent(params, ['sign']), params.sign)).toBe(true);
  });

  it('REFUND_SUCCESS of this refund is succeeded, refunded at gmt_refund_pay (Beijing) as an instant', async () => {
    const request = nextRequest();
    server.queue(queried(request, 'REFUND_SUCCESS', { gmt_refund_pay: '2026-11-28 20:00:05' }));
    expect(await gateway.queryRefund(request)).toEqual({ state: 'succeeded', refundedAt: '2026-11-28T12:00:05.000Z' });
  });

  it.each([
    ['no refund_status (Alipay did not carry it out)', undefined],
    ['a refund_status other than REFUND_SUCCESS', 'REFUND_PROCESSING'],
  ])('a signed 10000 with %s is not_found: the refund is sent again', async (_what, refundStatus) => {
    const request = nextRequest();
    server.queue(queried(request, refundStatus));
    expect(await gateway.queryRefund(request)).toEqual({ state: 'not_found' });
  });

  it('a signed ACQ.TRADE_NOT_EXIST is not_found', async () => {
    const request = nextRequest();
    server.queue(answer(REFUND_QUERY, alipayTradeNotExistNode(request.outTradeNo)));
    expect(await gateway.queryRefund(request)).toEqual({ state: 'not_found' });
  });

  it.each<[string, (request: RefundRequest) => Record<string, unknown>]>([
    ['another out_trade_no', (request) => ({ out_trade_no: `${request.outTradeNo}2` })],
    ['another out_request_no', (request) => ({ out_request_no: `${request.outRefundNo}2` })],
    ['another refund_amount', () => ({ refund_amount: '30.01' })],
    ['a refund_amount that is not yuan', () => ({ refund_amount: '30.001' })],
    ['no refund_amount', () => ({ refund_amount: undefined })],
  ])('a signed REFUND_SUCCESS with %s (a replay, a bug) is a GatewayError, never succeeded', async (_what, over) => {
    const request = nextRequest();
    server.queue(queried(request, 'REFUND_SUCCESS', over(request)));
    await expect(gateway.queryRefund(request)).rejects.toEqual(new GatewayError('alipay refund query answered for another refund or amount'));
  });

  it.each([
    ['40004 ACQ.SYSTEM_ERROR', '40004', 'ACQ.SYSTEM_ERROR', '系统错误'],
    ['40004 ACQ.INVALID_PARAMETER', '40004', 'ACQ.INVALID_PARAMETER', '参数无效'],
    ['20000 isp.unknow-error', '20000', 'isp.unknow-error', '系统繁忙'],
    ['40004 without a sub_code', '40004', undefined, undefined],
  ])('a signed %s is a GatewayError naming it', async (_what, code, subCode, subMsg) => {
    server.queue(answer(REFUND_QUERY, alipayErrorNode(code, subCode, subMsg)));
    await expect(gateway.queryRefund(nextRequest())).rejects.toEqual(new GatewayError(`alipay refund query failed: ${code} ${subCode ?? ''}`));
  });

  it.each<[string, (request: RefundRequest) => ReturnType<typeof answer>]>([
    ['a REFUND_SUCCESS signed with another key', (request) => queried(request, 'REFUND_SUCCESS', {}, { signWithKeyPem: otherKeyPem })],
    [
      'a REFUND_SUCCESS changed after it was signed',
      (request) => {
        const node = alipayRefundQueryNode({
          outTradeNo: request.outTradeNo,
          outRequestNo: request.outRefundNo,
          refundStatus: 'REFUND_SUCCESS',
          refundAmount: '30.00',
        });
        return answer(REFUND_QUERY, node, { signedNode: { ...node, refund_status: undefined } });
      },
    ],
    ['a REFUND_SUCCESS not signed at all', (request) => queried(request, 'REFUND_SUCCESS', {}, { unsigned: true })],
    ['a forged ACQ.TRADE_NOT_EXIST', (request) => answer(REFUND_QUERY, alipayTradeNotExistNode(request.outTradeNo), { signWithKeyPem: otherKeyPem })],
  ])('%s is a GatewayError', async (_what, reply) => {
    const request = nextRequest();
    server.queue(reply(request));
    await expectRefusedBySdk(gateway.queryRefund(request), REFUND_QUERY);
  });
});
