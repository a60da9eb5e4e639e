/**
 * `npm run bench -- cost`: what DynamoDB bills for one successful WeChat + points payment, step by
 * step, from the requests the code sends (scripts/bench/capacityMeter.ts), at on-demand prices.
 * Each step runs for RUNS payments of their own and is divided by RUNS (the sweeper's and the
 * dispatcher's queries are shared by everything they find, so they are measured that way too).
 */
import type { App } from '../../lib/app';
import { dispatchEvents } from '../../lib/events/dispatchEvents';
import type { EventSink } from '../../lib/events/eventSink';
import { completePayment } from '../../lib/pay/completePayment';
import { payOrder } from '../../lib/pay/payOrder';
import { getPayStatus } from '../../lib/pay/payStatus';
import { DEFAULT_SWEEP, sweep } from '../../lib/pay/sweep';
import { createDocumentClient } from '../../lib/store/dynamoClient';
import { DynamoPayStore } from '../../lib/store/dynamoPayStore';
import { LOCAL_TABLE_NAME as TABLE } from '../local/constants';
import { type Fixture, sampleAddress } from '../local/fixtures';
import type { SandboxGateway } from '../sandbox/gateway';
import { type Capacity, meterCapacity } from './capacityMeter';

/** On-demand, per million request units (us-east-1, since the price cut of November 2024). */
export const PRICE_PER_MILLION = { write: 0.625, read: 0.125 };
const RUNS = 100;
const FIRST_USER = 700_000;

interface CostStack {
  app: App;
  gateway: SandboxGateway;
  endpoint: string;
  seed(fixture: Fixture): Promise<void>;
}

export async function benchCosts(stack: CostStack): Promise<void> {
  const client = createDocumentClient(stack.endpoint);
  const unmetered = createDocumentClient(stack.endpoint);
  const meter = meterCapacity(client, unmetered, TABLE);
  const store = new DynamoPayStore(client, TABLE);
  const deps = { store, gateways: stack.app.gateways };
  const payDeps = { ...deps, fenPerPoint: 1, payTimeoutMinutes: 30 };

  // Three groups of payers: paid with a notification, paid with none (found by the +2 min query), abandoned.
  const payers = Array.from({ length: 3 * RUNS }, (_, i) => FIRST_USER + i);
  await stack.seed({
    users: payers.map((user_id) => ({ user_id, integral: 500, tokens: [{ token: `cost-${user_id}`, expires_at: '2099-01-01T00:00:00+08:00' }] })),
    addresses: payers.map((user_id) => sampleAddress(user_id, user_id)),
    orders: payers.map((user_id) => ({ order_id: user_id, user_id, goods_name: '保温杯', goods_price: '88.00', free_shipping: true })),
  });

  const opened: string[] = [];
  const payAndAsk = async (user: number) => {
    await meter.measure('pay: the token, the pay (read, its one write with the prepay id)', async () => {
      await store.findSession(`cost-${user}`);
      const result = await payOrder(payDeps, user, { orderId: user, addressId: user, method: 4, priceFen: 8300, points: 500, freightMode: 1, freightKey: 0 });
      opened.push(result.outTradeNo);
    });
    await meter.measure('status: the app asks once as the pay sheet closes', () => getPayStatus(deps, user, user));
  };
  for (const user of payers.slice(0, 2 * RUNS)) await payAndAsk(user);
  const notified = opened.slice(0, RUNS);
  const silent = opened.slice(RUNS, 2 * RUNS);
  for (const outTradeNo of notified) {
    const { transactionId } = stack.gateway.pay(outTradeNo);
    const payment = { channel: 'wechat' as const, outTradeNo, transactionId, amountFen: 8300, paidAt: new Date().toISOString() };
    await meter.measure('notification: recorded (attempt, order, capture)', () => completePayment(deps, payment));
  }
  for (const outTradeNo of silent) stack.gateway.pay(outTradeNo);
  const minutesOn = (minutes: number) => () => new Date(Date.now() + minutes * 60_000 + 5_000);
  const sweepOptions = { ...DEFAULT_SWEEP, groups: 1, gatewayCallsPerSecond: 10_000, pageSize: 1_000, concurrency: 8 };
  const swept = await meter.measure('sweep: its +2 min query captures it (the query pages shared)', () =>
    sweep({ ...deps, now: minutesOn(2) }, sweepOptions, 0),
  );
  if (swept.paid !== RUNS) throw new Error(`the sweep captured ${swept.paid} of ${RUNS}`);
  // Abandoned attempts, opened after that sweep: their whole schedule (queries at +2, +9, +16, +23, the
  // close at +30, the watch at +35).
  for (const user of payers.slice(2 * RUNS)) await payAndAsk(user);
  let released = 0;
  for (const minutes of [2, 9, 16, 23, 30, 35]) {
    const report = await meter.measure('abandoned: its sweeps (4 queries, close and release, watch)', () =>
      sweep({ ...deps, now: minutesOn(minutes) }, sweepOptions, 0),
    );
    released += report.released;
  }
  if (released !== RUNS) throw new Error(`the sweeps released ${released} of ${RUNS}`);

  const shop: EventSink = { target: 'webhook', send: async (events) => events.map(() => 'ok') };
  const delivered = await meter.measure('an event: delivered to the shop (the outbox pages shared)', () =>
    dispatchEvents({ store, sinks: [shop], now: minutesOn(40) }, { perShard: 1_000, deadline: Date.now() + 60 * 60_000 }),
  );
  if (delivered.delivered < 2 * RUNS) throw new Error(`the dispatcher delivered ${delivered.delivered} of ${2 * RUNS}`);

  const per = (label: string, n: number) => scale(meter.byLabel.get(label), 1 / n);
  const steps = [...meter.byLabel.keys()];
  const rows: [string, Capacity][] = [
    [steps[0], per(steps[0], 3 * RUNS)],
    [steps[1], per(steps[1], 3 * RUNS)],
    [steps[2], per(steps[2], RUNS)],
    [steps[3], per(steps[3], RUNS)],
    [steps[4], per(steps[4], RUNS)],
    [steps[5], per(steps[5], delivered.delivered)],
  ];
  console.log(`\nDynamoDB cost of a successful WeChat + points payment: ${2 * RUNS} payments, units as DynamoDB bills them (capacityMeter.ts)`);
  for (const [label, c] of rows)
    console.log(
      `  ${label.padEnd(68)} ${c.writeUnits.toFixed(2).padStart(6)} WRU (index ${c.indexWriteUnits.toFixed(2)})  ${c.readUnits.toFixed(2).padStart(6)} RRU  ${c.requests.toFixed(2).padStart(5)} requests`,
    );
  const [pay, status, notification, sweepCapture, abandonedSweeps, delivery] = rows.map(([, c]) => c);
  const events = (delivered.delivered - 2 * RUNS) / RUNS;
  const paths = {
    'paid with its notification': sum(pay, status, notification, delivery),
    'paid without one (captured by the sweep)': sum(pay, status, sweepCapture, delivery),
    [`abandoned (${events} event each)`]: sum(pay, status, abandonedSweeps, scale(delivery, events)),
  };
  for (const [name, c] of Object.entries(paths))
    console.log(
      `  ${name.padEnd(42)} ${c.writeUnits.toFixed(2)} WRU (index ${c.indexWriteUnits.toFixed(2)}) + ${c.readUnits.toFixed(2)} RRU = $${dollarsPerMillion(c).toFixed(2)} a million`,
    );
  client.destroy();
  unmetered.destroy();
}

function scale(c: Capacity | undefined, by: number): Capacity {
  if (!c) throw new Error('a step was not measured');
  return { readUnits: c.readUnits * by, writeUnits: c.writeUnits * by, indexWriteUnits: c.indexWriteUnits * by, requests: c.requests * by };
}

function sum(...parts: Capacity[]): Capacity {
  return parts.reduce(
    (total, c) => ({
      readUnits: total.readUnits + c.readUnits,
      writeUnits: total.writeUnits + c.writeUnits,
      indexWriteUnits: total.indexWriteUnits + c.indexWriteUnits,
      requests: total.requests + c.requests,
    }),
    { readUnits: 0, writeUnits: 0, indexWriteUnits: 0, requests: 0 },
  );
}

export function dollarsPerMillion(c: Capacity): number {
  return c.writeUnits * PRICE_PER_MILLION.write + c.readUnits * PRICE_PER_MILLION.read;
}
