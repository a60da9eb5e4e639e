import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@smithy/core/client';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { SETTLE_MS } from '../../lib/events/dispatchEvents';
import { localWebhookSecret, sandboxStageSecret } from '../../scripts/local/environment';
import { type EventReceiver, startEventReceiver } from '../../scripts/local/eventReceiver';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { buildRefundNotification } from '../../scripts/sandbox/notifications';
import { freePort } from '../support/ports';
import { startTestStack, type TestStack } from '../support/stack';
import { alipayFields, givenUser, pay, payDeps, signedAlipay, signedWechat, wechatTransaction } from '../support/world';

/**
 * Least privilege, proved: every AWS SDK command each function sends while it goes through its code
 * paths (pays, supersedes, gateway failures, status checks, notifications on time and late, sweeps) is
 * recorded as the IAM action and resource it needs, and each function's role in infra/roles.js must
 * allow exactly those: nothing missing (the call would be denied), nothing extra.
 */
type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2 | unknown>;
const FUNCTIONS = [
  'payOrder',
  'payStatus',
  'notifyWechat',
  'notifyAlipay',
  'notifyWechatRefund',
  'refundOrder',
  'shopCommand',
  'sweeper',
  'dispatchEvents',
] as const;
type FunctionName = (typeof FUNCTIONS)[number];

const running = new AsyncLocalStorage<FunctionName>();
const recorded = new Map<FunctionName, Set<string>>();
let secretText = '';

/** The IAM action and resource a command needs: TransactWriteItems needs the action of each of its parts. */
function grantsFor(command: { constructor: { name: string }; input: Record<string, unknown> }): string[] {
  const name = command.constructor.name.replace(/Command$/, '');
  const input = command.input as { IndexName?: string; TransactItems?: Record<string, unknown>[] };
  const onTable = (action: string, indexName?: string) => `dynamodb:${action} ${indexName ? `index/${indexName}` : 'table'}`;
  switch (name) {
    case 'Get':
    case 'GetItem':
      return [onTable('GetItem')];
    case 'BatchGet':
    case 'BatchGetItem':
      return [onTable('BatchGetItem')];
    case 'Put':
    case 'PutItem':
      return [onTable('PutItem')];
    case 'Update':
    case 'UpdateItem':
      return [onTable('UpdateItem')];
    case 'Delete':
    case 'DeleteItem':
      return [onTable('DeleteItem')];
    case 'Query':
      return [onTable('Query', input.IndexName)];
    case 'TransactGet':
    case 'TransactGetItems':
      return (input.TransactItems ?? []).map(() => onTable('GetItem'));
    case 'TransactWrite':
    case 'TransactWriteItems':
      return (input.TransactItems ?? []).map((item) => {
        const [part] = Object.keys(item);
        return onTable(part === 'ConditionCheck' ? 'ConditionCheckItem' : `${part}Item`);
      });
    case 'GetSecretValue':
      return ['secretsmanager:GetSecretValue secret'];
    case 'PutEvents':
      return ['events:PutEvents bus'];
    default:
      return [`unknown:${name}`];
  }
}

const originalSend = Client.prototype.send;

let stack: TestStack;
let receiver: EventReceiver;
const handlers = {} as Record<FunctionName, Handler>;

beforeAll(async () => {
  const webhookPort = await freePort();
  stack = await startTestStack({ env: { SHOP_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/paynow/events`, EVENT_BUS_NAME: 'paynow-test-bus' } });
  receiver = await startEventReceiver({ secret: localWebhookSecret(stack.credentials), port: webhookPort });
  secretText = JSON.stringify(sandboxStageSecret(stack.credentials));
  Client.prototype.send = function recordingSend(this: Client<never, never, never, never>, command: never, ...rest: never[]) {
    const fn = running.getStore();
    if (fn) for (const grant of grantsFor(command)) recorded.get(fn)?.add(grant);
    // Secrets Manager is answered here, at the SDK boundary: the functions read the stage secret as on AWS.
    if ((command as { constructor: { name: string } }).constructor.name === 'GetSecretValueCommand') {
      return Promise.resolve({ SecretString: secretText, $metadata: {} });
    }
    // And EventBridge: every entry taken.
    if ((command as { constructor: { name: string } }).constructor.name === 'PutEventsCommand') {
      const entries = (command as { input: { Entries: unknown[] } }).input.Entries;
      return Promise.resolve({ FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `eb-${i}` })), $metadata: {} });
    }
    return (originalSend as (...args: unknown[]) => unknown).call(this, command, ...rest);
  } as typeof Client.prototype.send;
  Object.assign(process.env, stack.env, { SECRET_ID: 'paynow/test' });
  for (const fn of FUNCTIONS) {
    recorded.set(fn, new Set());
    // Loading the module starts the function: its secret is read in its name too.
    handlers[fn] = await running.run(fn, async () => ((await import(`../../functions/${fn}/handler`)) as { handler: Handler }).handler);
  }
});
afterAll(async () => {
  Client.prototype.send = originalSend;
  await receiver.close();
  await stack.close();
});

const invoke = (fn: FunctionName, event: unknown) => running.run(fn, () => handlers[fn](event, lambdaContext));
const MINUTE = 60_000;

async function payRequest(token: string, body: object) {
  const response = (await invoke(
    'payOrder',
    httpEvent({ path: '/order/pay', headers: { token, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  )) as APIGatewayProxyStructuredResultV2;
  return JSON.parse(response.body as string) as { status: number; code?: string; data: { out_trade_no: string } };
}

it('every function path runs, and every role allows exactly what its function calls', async () => {
  // payOrder: a WeChat + points pay, the same order switched to Alipay (the first closed at WeChat
  // and superseded), a gateway failure (the hold released at once), and a points-only pay.
  const payer = await givenUser(stack, 2000, ['88.00', '88.00', '5.00']);
  const base = { address_id: payer.addressId, freight_mode: 1, freight_json_arr_key: 0 };
  expect(await payRequest(payer.token, { ...base, order_id: payer.orderIds[0], pay_method: 4, pay_price: '80.00', pay_integral: 800 })).toMatchObject({
    status: 200,
  });
  expect(await payRequest(payer.token, { ...base, order_id: payer.orderIds[0], pay_method: 5, pay_price: '80.00', pay_integral: 800 })).toMatchObject({
    status: 200,
  });
  stack.gateway.failNext('wechat.prepay');
  expect(await payRequest(payer.token, { ...base, order_id: payer.orderIds[1], pay_method: 1, pay_price: '88.00', pay_integral: 0 })).toMatchObject({
    code: 'GATEWAY_ERROR',
  });
  expect(await payRequest(payer.token, { ...base, order_id: payer.orderIds[2], pay_method: 3, pay_price: '0.00', pay_integral: 500 })).toMatchObject({
    status: 200,
  });

  // payStatus: an attempt over a minute old, paid at the gateway without a notification: captured.
  const asker = await givenUser(stack, 1000);
  const old = await pay(stack, asker, { method: 4, points: 800, priceFen: 8000 }, payDeps(stack, { now: () => new Date(Date.now() - 2 * MINUTE) }));
  stack.gateway.pay(old.outTradeNo);
  const status = (await invoke(
    'payStatus',
    httpEvent({ method: 'GET', path: '/order/pay/status', headers: { token: asker.token }, query: { order_id: String(asker.orderId) } }),
  )) as APIGatewayProxyStructuredResultV2;
  expect(JSON.parse(status.body as string)).toMatchObject({ data: { order_status: 'paid' } });

  // notifyWechat: a capture; a superseded attempt paid late that still takes the order; a released one paid late.
  const wechatPayer = await givenUser(stack, 1000, ['88.00', '88.00']);
  const onTime = await pay(stack, wechatPayer, { method: 4, points: 800, priceFen: 8000 });
  stack.gateway.pay(onTime.outTradeNo);
  const notifyWechat = async (outTradeNo: string, amountFen: number) => {
    const n = signedWechat(
      stack,
      wechatTransaction(stack, outTradeNo, {
        transaction_id: `4200${outTradeNo.slice(-12)}`,
        amount: { total: amountFen, payer_total: amountFen, currency: 'CNY', payer_currency: 'CNY' },
      }),
    );
    return ((await invoke('notifyWechat', httpEvent({ path: '/notify/wechat', headers: n.headers, body: n.body }))) as APIGatewayProxyStructuredResultV2)
      .statusCode;
  };
  expect(await notifyWechat(onTime.outTradeNo, 8000)).toBe(204);
  const second = { ...wechatPayer, orderId: wechatPayer.orderIds[1] };
  const superseded = await pay(stack, second, { method: 4, points: 100, priceFen: 8700 });
  await pay(stack, second, { method: 5, points: 100, priceFen: 8700 });
  expect(await notifyWechat(superseded.outTradeNo, 8700)).toBe(204);

  // notifyAlipay: a capture.
  const alipayPayer = await givenUser(stack, 1000);
  const alipayAttempt = await pay(stack, alipayPayer, { method: 5, points: 300, priceFen: 8500 });
  const alipayReply = (await invoke(
    'notifyAlipay',
    httpEvent({
      path: '/notify/alipay',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: signedAlipay(stack, alipayFields(alipayAttempt.outTradeNo, '85.00')),
    }),
  )) as APIGatewayProxyStructuredResultV2;
  expect(alipayReply.body).toBe('success');
  // ... and a refund case: an order paid by its WeChat attempt, then its superseded Alipay order string paid too.
  const twice = await givenUser(stack, 0);
  const alipaySheet = (await pay(stack, twice, { method: 2 })) as { outTradeNo: string; payParam: string };
  const paidBy = await pay(stack, twice, { method: 1 });
  await stack.app.store.captureAttempt(
    (await stack.app.store.getAttempt(paidBy.outTradeNo))!,
    {
      channel: 'wechat',
      outTradeNo: paidBy.outTradeNo,
      transactionId: `4200${paidBy.outTradeNo.slice(-12)}`,
      amountFen: 8800,
      paidAt: new Date().toISOString(),
    },
    new Date().toISOString(),
  );
  stack.gateway.registerAlipayOrder(alipaySheet.payParam);
  stack.gateway.pay(alipaySheet.outTradeNo);
  const refundCaseReply = (await invoke(
    'notifyAlipay',
    httpEvent({
      path: '/notify/alipay',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: signedAlipay(stack, alipayFields(alipaySheet.outTradeNo, '88.00')),
    }),
  )) as APIGatewayProxyStructuredResultV2;
  expect(refundCaseReply.body).toBe('success');
  expect(await stack.app.store.getAttempt(alipaySheet.outTradeNo)).toMatchObject({ status: 'refund_required' });

  // sweeper: expired attempts closed and released, then, once past their watch time, checked once more
  // and unwatched; the refund case's automatic refund made (Alipay refunds at once).
  const sleeper = await givenUser(stack, 1000);
  await pay(stack, sleeper, { method: 5, points: 300, priceFen: 8500 }, payDeps(stack, { now: () => new Date(Date.now() - 40 * MINUTE) }));
  expect(await invoke('sweeper', {})).toMatchObject({ released: 1, refunds_settled: 1, failed: 0 });
  expect(await invoke('sweeper', {})).toMatchObject({ unwatched: 1, failed: 0 });

  // refundOrder: a paid order's refund (WeChat answers PROCESSING); one WeChat refuses for good (its trade
  // was never paid there), asked again with the next number (a condition on the failed one).
  await stack.gateway.refundsSettled();
  const refundOrder = (orderId: number) => invoke('refundOrder', { order_id: orderId, reason: '用户取消订单' }) as Promise<Record<string, unknown>>;
  expect(await refundOrder(wechatPayer.orderId)).toMatchObject({ order_status: 'refunding', refund: { status: 'pending' } });
  expect(await refundOrder(second.orderId)).toMatchObject({ error: 'REFUND_FAILED' });
  expect(await refundOrder(second.orderId)).toMatchObject({ error: 'REFUND_FAILED' });
  expect(await stack.app.store.getRefund(`${superseded.outTradeNo}R2`)).toMatchObject({ status: 'failed' });

  // notifyWechatRefund: REFUND.SUCCESS of the first.
  await stack.gateway.refundsSettled(); // its notification goes nowhere here: delivered below
  const [settled] = stack.gateway.refunds(onTime.outTradeNo);
  const n = buildRefundNotification(stack.gateway.trade(onTime.outTradeNo)!, settled, stack.credentials);
  const refundReply = (await invoke(
    'notifyWechatRefund',
    httpEvent({ path: '/notify/wechat/refund', headers: n.headers, body: n.body }),
  )) as APIGatewayProxyStructuredResultV2;
  expect(refundReply.statusCode).toBe(204);
  expect(await stack.app.store.getOrder(wechatPayer.orderId)).toMatchObject({ status: 'refunded' });

  // shopCommand: each command, a paying order closed (its attempt released) among them.
  const shop = (command: string, fields: Record<string, unknown>) => invoke('shopCommand', { command, ...fields }) as Promise<Record<string, unknown>>;
  const customer = await givenUser(stack, 1000);
  expect(
    await shop('upsert-order', { order_id: 880_001, user_id: customer.userId, goods_name: '保温杯', goods_price: '88.00', free_shipping: true }),
  ).toMatchObject({ ok: true });
  await pay(stack, customer, { method: 4, points: 800, priceFen: 8000 });
  expect(await shop('close-order', { order_id: customer.orderId })).toMatchObject({ ok: true, order_status: 'closed' });
  expect(await shop('credit-points', { user_id: customer.userId, points: 10, entry_id: 'roles-1', reason: '签到' })).toMatchObject({ ok: true });
  expect(await shop('debit-points', { user_id: customer.userId, points: 5, entry_id: 'roles-2', reason: '兑换' })).toMatchObject({ ok: true });
  const token = 'roles-test-token-0123456789';
  expect(await shop('put-session', { token, user_id: customer.userId, expires_at: '2099-01-01T00:00:00Z' })).toMatchObject({ ok: true });
  expect(await shop('revoke-session', { token })).toMatchObject({ ok: true, changed: true });
  const address = {
    address_id: 880_002,
    user_id: customer.userId,
    name: '李四',
    phone: '13900000000',
    province: '浙江省',
    city: '杭州市',
    district: '',
    detail: '1号',
  };
  expect(await shop('upsert-address', address)).toMatchObject({ ok: true });

  // dispatchEvents: the events of all the above to the webhook and the bus, once they may go (SETTLE_MS
  // old); listed; one redelivered.
  await sleep(SETTLE_MS);
  expect(await invoke('dispatchEvents', {})).toMatchObject({ delivered: expect.any(Number), retrying: 0, dead: 0 });
  expect(receiver.received.map((e) => e.type)).toEqual(expect.arrayContaining(['order.paid', 'payment.refund_required', 'order.refunded', 'order.closed']));
  expect(await invoke('dispatchEvents', { action: 'list' })).toEqual({ events: [] });
  const [first] = receiver.received;
  expect(await invoke('dispatchEvents', { action: 'redeliver', event_id: first?.id })).toMatchObject({ event: { status: 'delivered', attempts: 2 } });

  const allowed = await allowedByRoles();
  expect([...recorded.keys()].sort()).toEqual(Object.keys(allowed).sort());
  for (const fn of recorded.keys()) {
    expect({ fn, calls: [...(recorded.get(fn) ?? [])].sort() }).toEqual({ fn, calls: allowed[fn] });
  }
});

/** infra/roles.js, resolved for stage test: `action resource` per function, for the calls the code makes. */
async function allowedByRoles(): Promise<Record<string, string[]>> {
  const roles = require('../../infra/roles.js') as ((options: {
    resolveVariable: (name: string) => Promise<string>;
  }) => Promise<{ Resources: Record<string, unknown> }>) & {
    FUNCTION_NAMES: string[];
    roleName: (fn: string) => string;
  };
  const variables: Record<string, string> = {
    'self:service': 'paynow',
    'sls:stage': 'test',
    'self:custom.secretName': 'paynow/test',
    'param:eventBusName': 'paynow-test-bus',
  };
  const { Resources } = await roles({ resolveVariable: async (name) => variables[name] });
  const result: Record<string, string[]> = {};
  for (const fn of roles.FUNCTION_NAMES) {
    const role = Resources[roles.roleName(fn)] as { Properties: { Policies: { PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] } }[] } };
    const grants = role.Properties.Policies.flatMap((p) => p.PolicyDocument.Statement).flatMap(({ Action, Resource }) => {
      const resource = resourceKind(Resource);
      // Logs and the failure queue are used by the platform on the function's behalf, not by its code: checked by the package test.
      if (resource === 'logs' || resource === 'queue') return [];
      return Action.map((action) => `${action} ${resource}`);
    });
    result[fn] = [...new Set(grants)].sort();
  }
  return result;
}

function resourceKind(resource: unknown): string {
  const text = JSON.stringify(resource);
  if (text.includes(':logs:')) return 'logs';
  if (text.includes(':secretsmanager:')) return 'secret';
  if (text.includes(':event-bus/paynow-test-bus')) return 'bus';
  if (text.includes('SweeperFailureQueue')) return 'queue';
  const index = /"index","([^"]+)"/.exec(text);
  if (index) return `index/${index[1]}`;
  if (text === JSON.stringify({ 'Fn::GetAtt': ['PaynowTable', 'Arn'] })) return 'table';
  return `unexpected ${text}`;
}
