import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DEMO_FIXTURE_FILE } from '../../scripts/local/demo';
import { lambdaContext } from '../../scripts/local/httpEvents';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';

/**
 * Every sample event in events/ (what `npm run invoke -- FUNCTION events/FILE.json` sends) replayed
 * through its function against the demo data, in order: each answers what its name says.
 */
const EVENTS = join(__dirname, '..', '..', 'events');
type Handler = (event: unknown, context: unknown) => Promise<unknown>;
type Reply = APIGatewayProxyStructuredResultV2 & { body: string };
const envelope = (reply: unknown) => JSON.parse((reply as Reply).body) as { status: number; msg: string; code?: string; data: Record<string, unknown> };

const EXPECTED: Record<string, (reply: unknown) => void> = {
  'payOrder.json': (reply) =>
    expect(envelope(reply)).toMatchObject({ status: 200, msg: '下单成功', data: { pay_param: { package: 'Sign=WXPay', prepayid: expect.any(String) } } }),
  'payOrder-points.json': (reply) => expect(envelope(reply)).toMatchObject({ status: 200, msg: '支付成功', data: { pay_param: null } }),
  // The order payOrder-points.json just paid with points: refunded at once, its 4500 points back.
  'refundOrder.json': (reply) =>
    expect(reply).toMatchObject({
      order_id: 505,
      order_status: 'refunded',
      refund: { kind: 'order', status: 'succeeded', refund_price: '0.00', refund_integral: 4500 },
    }),
  'payOrder-price-mismatch.json': (reply) =>
    expect(envelope(reply)).toMatchObject({ status: 0, code: 'PRICE_MISMATCH', msg: expect.stringContaining('应付199.00元') }),
  'payOrder-token-expired.json': (reply) => expect(envelope(reply)).toEqual({ status: 0, msg: 'token过期', code: 'TOKEN_EXPIRED', data: [] }),
  'payStatus.json': (reply) =>
    expect(envelope(reply)).toMatchObject({ status: 200, data: { order_id: 501, order_status: 'paying', pay_method: 1, pay_price: '100.00' } }),
  'payStatus-no-order-id.json': (reply) =>
    expect(envelope(reply)).toMatchObject({ status: 0, code: 'INVALID_PARAM', msg: expect.stringContaining('order_id') }),
  'notifyWechat-unsigned.json': (reply) => expect(reply).toMatchObject({ statusCode: 401, body: JSON.stringify({ code: 'FAIL', message: '签名验证失败' }) }),
  'notifyWechatRefund-unsigned.json': (reply) =>
    expect(reply).toMatchObject({ statusCode: 401, body: JSON.stringify({ code: 'FAIL', message: '签名验证失败' }) }),
  'notifyAlipay-unsigned.json': (reply) => expect(reply).toMatchObject({ statusCode: 200, body: 'fail' }),
  'sweeper.json': (reply) =>
    expect(reply).toEqual({
      checked: 0,
      paid: 0,
      released: 0,
      unwatched: 0,
      rescheduled: 0,
      refunds_settled: 0,
      refunds_pending: 0,
      migrated: 0,
      failed: 0,
      busy: 0,
      behind: 0,
      gateway_calls_wechat: 0,
      gateway_calls_alipay: 0,
    }),
  // No webhook or bus configured here: nothing is sent, and the events wait.
  'dispatchEvents.json': (reply) => expect(reply).toEqual({ delivered: 0, retrying: 0, failing: 0, dead: 0, waiting: 0, raced: 0 }),
  // The shop creates an order the app can pay.
  'shopCommand.json': (reply) => expect(reply).toEqual({ ok: true, changed: true, created: true, order_id: 601, order_status: 'unpaid' }),
  // What the pays and the refund above emitted, undelivered.
  'dispatchEvents-list.json': (reply) =>
    expect((reply as { events: { type: string; order_id: number; status: string }[] }).events).toEqual([
      expect.objectContaining({ type: 'order.paid', order_id: 505, status: 'pending' }),
      expect.objectContaining({ type: 'order.refunded', order_id: 505, status: 'pending' }),
    ]),
};

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
  await stack.seed(JSON.parse(readFileSync(DEMO_FIXTURE_FILE, 'utf8')));
  Object.assign(process.env, stack.env);
});
afterAll(() => expectBalancedBooksThenClose(stack));

it('every sample event has an expected answer here', () => {
  expect(
    readdirSync(EVENTS)
      .filter((f) => f.endsWith('.json'))
      .sort(),
  ).toEqual(Object.keys(EXPECTED).sort());
});

it.each(Object.keys(EXPECTED))('%s', async (file) => {
  const fn = file.replace(/(-.*)?\.json$/, '');
  const { handler } = (await import(`../../functions/${fn}/handler`)) as { handler: Handler };
  EXPECTED[file](await handler(JSON.parse(readFileSync(join(EVENTS, file), 'utf8')), lambdaContext));
});
