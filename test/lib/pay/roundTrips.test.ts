import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { completePayment } from '../../../lib/pay/completePayment';
import { getPayStatus } from '../../../lib/pay/payStatus';
import { DynamoPayStore } from '../../../lib/store/dynamoPayStore';
import { recordingClient, type SentRequest } from '../../support/sentRequests';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { gatewayPayment, givenUser, pay, payDeps } from '../../support/world';

/**
 * Issue 12, "each request's own cost": the requests each path sends to the table, counted at the
 * DynamoDB client. A request that needs the state it has just read or written does not read it again.
 */
let stack: TestStack;
let client: DynamoDBDocumentClient;
let store: DynamoPayStore;
let sent: SentRequest[];

beforeAll(async () => {
  stack = await startTestStack();
  ({ client, sent } = recordingClient(stack.dynamo.endpoint));
  store = new DynamoPayStore(client, TABLE);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => client.destroy()));

const MINUTE = 60_000;
const at = (ms: number) => () => new Date(Date.now() + ms);

/** The requests `work` sends to the table, in order. */
async function requestsOf<T>(work: () => Promise<T>): Promise<{ result: T; requests: string[] }> {
  sent.length = 0;
  const result = await work();
  return { result, requests: sent.map((request) => request.operation) };
}

const statusAt = (user: { userId: number; orderId: number }, ms: number) => () =>
  getPayStatus({ store, gateways: stack.app.gateways, now: at(ms) }, user.userId, user.orderId);

describe('GET /order/pay/status', () => {
  it('a young attempt is answered from the order alone: 1 request', async () => {
    const user = await givenUser(stack, 500);
    await pay(stack, user, { method: 4, priceFen: 8300, points: 500 });
    const { result, requests } = await requestsOf(statusAt(user, 0));
    expect(requests).toEqual(['GetItem']);
    expect(result).toMatchObject({ order_status: 'paying', pay_method: 4, pay_price: '83.00', pay_integral: 500, paid_at: null });
  });

  it('an attempt found paid at the gateway: order, claim, attempt, capture (4), and the answer is what was stored', async () => {
    const user = await givenUser(stack, 500);
    const opened = await pay(stack, user, { method: 4, priceFen: 8300, points: 500 });
    stack.gateway.pay(opened.outTradeNo); // its notification lost
    const { result, requests } = await requestsOf(statusAt(user, 2 * MINUTE));
    expect(requests).toEqual(['GetItem', 'UpdateItem', 'GetItem', 'TransactWriteItems']);
    expect(result).toMatchObject({ order_status: 'paid', out_trade_no: opened.outTradeNo, pay_integral: 500 });
    expect(result.paid_at).toMatch(/\+08:00$/);
    // The answer built from the write is the one a fresh read gives.
    expect(result).toEqual(await getPayStatus(stack.app, user.userId, user.orderId));
    expect(await stack.app.store.getAccount(user.userId)).toMatchObject({ available: 0, held: 0, spent: 500 });
  });

  it('an attempt the gateway says is unpaid: order, claim, attempt (3); within the claim interval: order, claim (2)', async () => {
    const user = await givenUser(stack, 0);
    await pay(stack, user, { method: 1 });
    const first = await requestsOf(statusAt(user, 2 * MINUTE));
    expect(first.requests).toEqual(['GetItem', 'UpdateItem', 'GetItem']);
    const again = await requestsOf(statusAt(user, 2 * MINUTE + 10_000));
    expect(again.requests).toEqual(['GetItem', 'UpdateItem']);
    expect(again.result).toEqual(first.result);
    expect(first.result).toMatchObject({ order_status: 'paying', pay_method: 1, pay_price: '88.00' });
  });

  it('a paid order: the order and the attempt that paid it (2)', async () => {
    const user = await givenUser(stack, 0);
    const opened = await pay(stack, user, { method: 1 });
    const { transactionId } = stack.gateway.pay(opened.outTradeNo);
    await completePayment(stack.app, { channel: 'wechat', outTradeNo: opened.outTradeNo, transactionId, amountFen: 8800, paidAt: new Date().toISOString() });
    const { result, requests } = await requestsOf(statusAt(user, 2 * MINUTE));
    expect(requests).toEqual(['GetItem', 'GetItem']);
    expect(result).toMatchObject({ order_status: 'paid', out_trade_no: opened.outTradeNo });
  });

  it('an attempt paid meanwhile by its notification is answered as stored, with no second capture', async () => {
    const user = await givenUser(stack, 0);
    const opened = await pay(stack, user, { method: 1 });
    const { transactionId } = stack.gateway.pay(opened.outTradeNo);
    const payment = { channel: 'wechat' as const, outTradeNo: opened.outTradeNo, transactionId, amountFen: 8800, paidAt: new Date().toISOString() };
    // The notification lands between the status call's read of the order and its capture.
    const racing = new DynamoPayStore(client, TABLE);
    racing.claimGatewayCheck = async (...args) => {
      const claimed = await store.claimGatewayCheck(...args);
      expect(await completePayment(stack.app, payment)).toBe('paid');
      return claimed;
    };
    const status = await getPayStatus({ store: racing, gateways: stack.app.gateways, now: at(2 * MINUTE) }, user.userId, user.orderId);
    expect(status).toEqual(await getPayStatus(stack.app, user.userId, user.orderId));
    expect(status).toMatchObject({ order_status: 'paid', out_trade_no: opened.outTradeNo });
  });
});

describe('a payment notification', () => {
  it('attempt, order, capture (3): no transactional read', async () => {
    const user = await givenUser(stack, 500);
    const opened = await pay(stack, user, { method: 4, priceFen: 8300, points: 500 });
    const { transactionId } = stack.gateway.pay(opened.outTradeNo);
    const payment = { channel: 'wechat' as const, outTradeNo: opened.outTradeNo, transactionId, amountFen: 8300, paidAt: new Date().toISOString() };
    const { result, requests } = await requestsOf(() => completePayment({ store, gateways: stack.app.gateways }, payment));
    expect(result).toBe('paid');
    expect(requests).toEqual(['GetItem', 'GetItem', 'TransactWriteItems']);
  });

  it('a payment decided from state in hand read around a release (order paying with it, then the attempt expired): settled from the settlement read, no capture that must fail (2)', async () => {
    const user = await givenUser(stack, 0);
    const opened = await pay(stack, user, { method: 1 });
    // As the status call reads them: the order, then the attempt; the sweeper releases it in between.
    const order = (await store.getOrder(user.orderId))!;
    const attempt = (await store.getAttempt(opened.outTradeNo))!;
    expect(await stack.app.store.releaseAttempt(attempt, 'expired', new Date().toISOString(), true)).toBe(true);
    const released = (await store.getAttempt(opened.outTradeNo))!;
    const { result, requests } = await requestsOf(() =>
      completePayment({ store, gateways: stack.app.gateways }, gatewayPayment(opened.outTradeNo), { order, attempt: released }),
    );
    expect(result).toBe('paid');
    expect(requests).toEqual(['TransactGetItems', 'TransactWriteItems']);
  });

  /** An order whose first attempt (WeChat) a second one (Alipay) replaced. */
  async function paidBySuperseded() {
    const user = await givenUser(stack, 0);
    const first = await pay(stack, user, { method: 1 });
    const second = await pay(stack, user, { method: 2 });
    return { user, first, second };
  }

  it('a payment for an order paid by another attempt: attempt, order, the refund case (3); no settlement read', async () => {
    const { first, second } = await paidBySuperseded();
    expect(await completePayment(stack.app, gatewayPayment(first.outTradeNo, 'wechat'))).toBe('paid');
    const { result, requests } = await requestsOf(() => completePayment({ store, gateways: stack.app.gateways }, gatewayPayment(second.outTradeNo, 'alipay')));
    expect(result).toBe('refund_required');
    expect(requests).toEqual(['GetItem', 'GetItem', 'TransactWriteItems']);
  });

  it('a late payment whose order another attempt paid after the first look: the settlement read sees it, and no write that must fail is sent (4)', async () => {
    const { user, first, second } = await paidBySuperseded();
    // The open attempt's notification lands between this payment's first look at the order and its settlement read.
    const racing = new DynamoPayStore(client, TABLE);
    racing.loadSettlementContext = async (attempt) => {
      expect(await completePayment(stack.app, gatewayPayment(second.outTradeNo, 'alipay'))).toBe('paid');
      return store.loadSettlementContext(attempt);
    };
    const { result, requests } = await requestsOf(() =>
      completePayment({ store: racing, gateways: stack.app.gateways }, gatewayPayment(first.outTradeNo, 'wechat')),
    );
    expect(result).toBe('refund_required');
    expect(requests).toEqual(['GetItem', 'GetItem', 'TransactGetItems', 'TransactWriteItems']);
    expect(await stack.app.store.getOrder(user.orderId)).toMatchObject({ status: 'paid', paidAttempt: second.outTradeNo });
  });
});

describe('POST /order/pay, WeChat + points', () => {
  it('the context read and the one write, which keeps the prepay id (2)', async () => {
    const user = await givenUser(stack, 500);
    const { result, requests } = await requestsOf(() => pay(stack, user, { method: 4, priceFen: 8300, points: 500 }, payDeps(stack, { store })));
    expect(result.outcome).toBe('pay_param');
    expect(requests).toEqual(['BatchGetItem', 'TransactWriteItems']);
    const prepayid = result.outcome === 'pay_param' && typeof result.payParam !== 'string' ? result.payParam.prepayid : undefined;
    expect(prepayid).toMatch(/^wx/);
    expect(await stack.app.store.getOrder(user.orderId)).toMatchObject({ openAttempt: { outTradeNo: result.outTradeNo, prepayId: prepayid } });
  });

  it('a switch from a WeChat attempt: the context read, its prepay id forgotten once closed, the one write (3)', async () => {
    const user = await givenUser(stack, 500);
    await pay(stack, user, { method: 1 });
    const { result, requests } = await requestsOf(() => pay(stack, user, { method: 4, priceFen: 8300, points: 500 }, payDeps(stack, { store })));
    expect(result.outcome).toBe('pay_param');
    expect(requests).toEqual(['BatchGetItem', 'UpdateItem', 'TransactWriteItems']);
  });

  it('a switch from an Alipay attempt, which has no prepay id to forget: the context read and the one write (2)', async () => {
    const user = await givenUser(stack, 500);
    await pay(stack, user, { method: 2 });
    const { result, requests } = await requestsOf(() => pay(stack, user, { method: 4, priceFen: 8300, points: 500 }, payDeps(stack, { store })));
    expect(result.outcome).toBe('pay_param');
    expect(requests).toEqual(['BatchGetItem', 'TransactWriteItems']);
  });
});
