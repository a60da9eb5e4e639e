/**
 * npm run bench:sweep [-- ATTEMPTS]
 *
 * The sweeping as deployed (`sweep()` once per group, the groups side by side, every simulated minute)
 * on the local database and the sandbox gateway, over attempts of mixed fates made through the real pay
 * flow: abandoned, paid with a notification, paid without one, and superseded (the user paid again
 * another way; the new attempt is then abandoned).
 *
 * The clock: attempts are created at simulated times spread over 40 minutes from the start, and the
 * sweeps run at simulated minute ticks until every attempt is done; the sweeping decides with the
 * simulated clock, while the gateways sign and check signatures on the real one (the sandbox accepts any
 * request time here). Lateness is measured on the simulated clock: an attempt is settled at the tick whose
 * sweep captured or released it; its deadline is its expiry + 5 min (abandoned: released) or its payment
 * + 10 min (paid without a notification: captured). "Sweeper work" is the real time the sweeps took.
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { DUE_SHARDS, dueShard } from '../../lib/domain/checkSchedule';
import type { Channel, GatewayPayment } from '../../lib/domain/model';
import type { PaymentGateway } from '../../lib/gateways/paymentGateway';
import { completePayment } from '../../lib/pay/completePayment';
import { beforeEachCall, tradeOfCall } from '../../lib/pay/gatewayRateLimit';
import { payOrder } from '../../lib/pay/payOrder';
import { DEFAULT_SWEEP, sweep } from '../../lib/pay/sweep';
import { createDocumentClient } from '../../lib/store/dynamoClient';
import { DynamoPayStore } from '../../lib/store/dynamoPayStore';
import { startLocalDynamo } from '../local/dynalite';
import { localFunctionEnvironment, writeLocalSecret } from '../local/environment';
import { sampleAddress, writeFixture } from '../local/fixtures';
import { createTables } from '../local/tables';
import { generateSandboxCredentials, type SandboxCredentials } from '../sandbox/credentials';
import { startSandboxGateway } from '../sandbox/gateway';

const MINUTE = 60_000;
const TABLE = 'paynow-bench';
const ORDERS_PER_USER = 10;
const GROUPS = 8;

type Fate = 'abandoned' | 'paid_notified' | 'paid_silent' | 'superseded';

interface Planned {
  orderId: number;
  userId: number;
  addressId: number;
  createdAt: number;
  fate: Fate;
  method: 1 | 2;
  /** When the user pays (paid fates). */
  paidAt?: number;
}

interface Made {
  plan: Planned;
  outTradeNo: string;
  expiresAt: number;
  payParam?: unknown;
  /** For superseded: the attempt that replaced it (abandoned). */
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const started = performance.now();
  const dynamo = await startLocalDynamo({ port: 0 });
  await createTables(dynamo.endpoint, TABLE);
  const generated = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  const gateway = await startSandboxGateway({
    credentials: generated,
    wechatTimestampToleranceSeconds: 10 * 24 * 3600,
    alipayTimestampToleranceSeconds: 10 * 24 * 3600,
  });
  const credentials: SandboxCredentials = {
    wechat: { ...generated.wechat, gateway_url: gateway.url },
    alipay: { ...generated.alipay, gateway_url: `${gateway.url}/alipay/gateway.do` },
  };
  const secretDir = await mkdtemp(join(tmpdir(), 'paynow-bench-secret-'));
  const secretFile = await writeLocalSecret(credentials, secretDir);
  const env = localFunctionEnvironment(credentials, {
    tableName: TABLE,
    dynamodbEndpoint: dynamo.endpoint,
    notifyBaseUrl: 'http://127.0.0.1:3999',
    secretFile,
  });
  const app = createApp(loadConfig(env));
  await app.ready();

  // Writes per partition key of the table and of the index, counted at the client.
  const writes = { table: new Map<string, number>(), index: new Map<string, number>() };
  const db = countingWrites(createDocumentClient(dynamo.endpoint), writes);
  const store = new DynamoPayStore(db, TABLE);

  // ---- plan and seed ----
  const T0 = Date.now();
  const plans = plan(total, T0);
  const users = Math.ceil(plans.length / ORDERS_PER_USER);
  const seedDb = createDocumentClient(dynamo.endpoint);
  for (let u = 0; u < users; u += 200) {
    const slice = plans.slice(u * ORDERS_PER_USER, (u + 200) * ORDERS_PER_USER);
    await writeFixture(seedDb, TABLE, {
      users: [...new Set(slice.map((p) => p.userId))].map((user_id) => ({ user_id, integral: 0, tokens: [] })),
      addresses: [...new Set(slice.map((p) => p.userId))].map((user_id) => sampleAddress(user_id, user_id + 1)),
      orders: slice.map((p) => ({ order_id: p.orderId, user_id: p.userId, goods_name: '保温杯', goods_price: '88.00', free_shipping: true })),
    });
  }
  const seeded = performance.now();

  // ---- the pays, through the real flow, each at its simulated time ----
  const made: Made[] = [];
  await inParallel(plans, 8, async (p) => {
    const deps = { store, gateways: app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30, now: () => new Date(p.createdAt) };
    const pay = (method: 1 | 2, at: number) =>
      payOrder({ ...deps, now: () => new Date(at) }, p.userId, {
        orderId: p.orderId,
        addressId: p.addressId,
        method,
        priceFen: 8800,
        points: 0,
        freightMode: 1,
        freightKey: 0,
      });
    const first = await pay(p.method, p.createdAt);
    if (first.outcome !== 'pay_param') throw new Error(`unexpected ${first.outcome}`);
    // The user opened the pay sheet (an Alipay order string exists at Alipay only then).
    if (p.method === 2 && p.fate !== 'abandoned') gateway.registerAlipayOrder(String(first.payParam));
    made.push({ plan: p, outTradeNo: first.outTradeNo, expiresAt: p.createdAt + 30 * MINUTE });
    if (p.fate === 'superseded') {
      // A minute later the user pays the other way: the first attempt is superseded, the new one abandoned.
      const again = await pay(p.method === 1 ? 2 : 1, p.createdAt + MINUTE);
      made.push({ plan: { ...p, fate: 'abandoned', createdAt: p.createdAt + MINUTE }, outTradeNo: again.outTradeNo, expiresAt: p.createdAt + 31 * MINUTE });
    }
  });
  const paid = performance.now();

  // ---- the timeline ----
  const calls = new Map<string, number>();
  const settledAt = new Map<string, number>();
  let simNow = T0;
  const watched = watchingSettles(store, settledAt, () => simNow);
  const sweepGateways = countingCalls(app.gateways, calls);
  const events = made
    .filter((m) => m.plan.paidAt !== undefined && (m.plan.fate === 'paid_notified' || m.plan.fate === 'paid_silent'))
    .sort((a, b) => (a.plan.paidAt ?? 0) - (b.plan.paidAt ?? 0));
  let next = 0;
  let sweepWorkMs = 0;
  let ticks = 0;
  const end = T0 + 80 * MINUTE;
  for (simNow = T0 + MINUTE; simNow <= end; simNow += MINUTE) {
    // The users' payments (and the notifications that do arrive) up to this minute.
    for (; next < events.length && (events[next].plan.paidAt ?? 0) <= simNow; next++) {
      const m = events[next];
      const payment = gateway.pay(m.outTradeNo);
      if (m.plan.fate === 'paid_notified') {
        const gatewayPayment: GatewayPayment = {
          channel: payment.channel as Channel,
          outTradeNo: m.outTradeNo,
          transactionId: payment.transactionId,
          amountFen: payment.amountFen,
          paidAt: new Date(m.plan.paidAt ?? simNow).toISOString(),
        };
        const at = m.plan.paidAt ?? simNow;
        await completePayment({ store: watched, gateways: app.gateways, now: () => new Date(at) }, gatewayPayment);
      }
    }
    const tickStarted = performance.now();
    await Promise.all(
      Array.from({ length: GROUPS }, (_, group) =>
        sweep(
          { store: watched, gateways: sweepGateways, now: () => new Date(simNow) },
          { ...DEFAULT_SWEEP, groups: GROUPS, gatewayCallsPerSecond: 100_000 },
          group,
        ),
      ),
    );
    sweepWorkMs += performance.now() - tickStarted;
    ticks++;
  }

  // ---- the report ----
  const fates: Fate[] = ['abandoned', 'paid_notified', 'paid_silent', 'superseded'];
  const late: string[] = [];
  let settled = 0;
  for (const m of made) {
    const at = settledAt.get(m.outTradeNo);
    if (at !== undefined) settled++;
    const deadline = m.plan.fate === 'abandoned' ? m.expiresAt + 5 * MINUTE : m.plan.fate === 'paid_silent' ? (m.plan.paidAt ?? 0) + 10 * MINUTE : undefined;
    if (deadline !== undefined && (at === undefined || at > deadline))
      late.push(`${m.outTradeNo} (${m.plan.fate}) ${at === undefined ? 'never settled' : `${(at - deadline) / 1000} s late`}`);
  }
  const busiest = (counts: Map<string, number>, prefix: string) =>
    [...counts.entries()].filter(([key]) => key.startsWith(prefix)).sort((a, b) => b[1] - a[1])[0] ?? ['none', 0];
  const [tableKey, tableWrites] = busiest(writes.table, '');
  const dueWrites = [...writes.index.entries()].filter(([key]) => key.startsWith('DUE#')).reduce((sum, [, n]) => sum + n, 0);
  const [indexKey, indexWrites] = busiest(writes.index, 'DUE#');
  const [outboxKey, outboxWrites] = busiest(writes.index, 'OUTBOX#');
  const simulatedSeconds = (40 * MINUTE) / 1000;
  const paysPerSecond = plans.length / simulatedSeconds;
  if (made.length < total) console.log(`(fewer attempts than asked: ${made.length} of ${total}, by the draw of fates)`);
  console.log(
    `sweep bench: ${made.length} attempts (${plans.length} orders over 40 simulated minutes: ${paysPerSecond.toFixed(1)} pays a second), ${GROUPS} groups, ${DUE_SHARDS} shards`,
  );
  console.log(`  seeding ${((seeded - started) / 1000).toFixed(1)} s, pays ${((paid - seeded) / 1000).toFixed(1)} s, ${ticks} sweep ticks`);
  console.log(
    `  attempts settled: ${settled}; per second of sweeper work: ${(settled / (sweepWorkMs / 1000)).toFixed(0)} (${(sweepWorkMs / 1000).toFixed(1)} s of sweeps)`,
  );
  console.log('  gateway calls of the sweeping per attempt, by fate:');
  for (const fate of fates) {
    const of = made.filter((m) => (fate === 'superseded' ? m.plan.fate === 'superseded' : m.plan.fate === fate));
    const counts = of.map((m) => calls.get(m.outTradeNo) ?? 0);
    if (!counts.length) continue;
    console.log(
      `    ${fate.padEnd(14)} ${String(of.length).padStart(6)} attempts  mean ${(counts.reduce((a, b) => a + b, 0) / counts.length).toFixed(2)}  max ${Math.max(...counts)}`,
    );
  }
  // At a sustained rate every attempt's index writes land in its shard; the busiest shard takes its
  // measured share of them (an even spread would be 1/128).
  const atThousand = (1000 / plans.length) * indexWrites;
  console.log(
    `  index writes per attempt: ${(dueWrites / made.length).toFixed(2)}; busiest due shard ${indexKey}: ${indexWrites} of ${dueWrites} (${((indexWrites / dueWrites) * DUE_SHARDS).toFixed(2)}x an even share)` +
      ` -> at 1,000 pays a second it takes ${atThousand.toFixed(0)} writes a second`,
  );
  console.log(
    `  busiest outbox partition ${outboxKey}: ${outboxWrites} puts (deliveries not run here) -> ${((1000 / plans.length) * outboxWrites * 2).toFixed(0)} writes a second at 1,000 pays a second with their deliveries`,
  );
  console.log(`  busiest table partition key: ${tableKey} with ${tableWrites} writes (the lease items: 2 a minute each)`);
  console.log(`  settled after their deadline: ${late.length}${late.length ? `\n    ${late.slice(0, 20).join('\n    ')}` : ''}`);
  seedDb.destroy();
  db.destroy();
  await gateway.close();
  await dynamo.close();
  await rm(secretDir, { recursive: true, force: true });
  process.exit(late.length ? 1 : 0);
}

/** The orders and their fates: 25% abandoned, 5% superseded, 35% paid with a notification, 35% without. */
function plan(total: number, t0: number): Planned[] {
  const plans: Planned[] = [];
  // A superseded order (5%) makes two attempts: orders so that attempts number at least `total`
  // (about 2% above it; the fates are drawn at random).
  const orders = Math.ceil(total / 1.03);
  for (let i = 0; i < orders; i++) {
    const userId = 1_000_000 + Math.floor(i / ORDERS_PER_USER) * 10;
    const createdAt = t0 + Math.floor((i / orders) * 40 * MINUTE);
    const roll = randomInt(100);
    const fate: Fate = roll < 25 ? 'abandoned' : roll < 30 ? 'superseded' : roll < 65 ? 'paid_notified' : 'paid_silent';
    const paidAt = fate === 'paid_notified' || fate === 'paid_silent' ? createdAt + randomInt(10_000, 28 * MINUTE) : undefined;
    plans.push({ orderId: 5_000_000 + i, userId, addressId: userId + 1, createdAt, fate, method: i % 2 === 0 ? 1 : 2, paidAt });
  }
  return plans;
}

async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** Counts each sweeping gateway call against the trade it was about. */
function countingCalls(gateways: Record<Channel, PaymentGateway>, calls: Map<string, number>): Record<Channel, PaymentGateway> {
  return beforeEachCall(gateways, (_channel, _method, args) => {
    const no = tradeOfCall(args);
    calls.set(no, (calls.get(no) ?? 0) + 1);
  });
}

/** The store, noting the simulated time at which each attempt was first captured or released. */
function watchingSettles(store: DynamoPayStore, settledAt: Map<string, number>, now: () => number): DynamoPayStore {
  const note = (no: string) => {
    if (!settledAt.has(no)) settledAt.set(no, now());
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'captureAttempt' || property === 'releaseAttempt' || property === 'payWithReleasedAttempt') {
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          if (result !== false) note((args[0] as { outTradeNo: string }).outTradeNo);
          return result;
        };
      }
      return value.bind(target);
    },
  });
}

/** A client that counts writes per partition key of the table and of the index (`gsi1pk` set or removed). */
function countingWrites(client: ReturnType<typeof createDocumentClient>, writes: { table: Map<string, number>; index: Map<string, number> }) {
  const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const onWrite = (part: {
    Key?: Record<string, unknown>;
    Item?: Record<string, unknown>;
    UpdateExpression?: string;
    ExpressionAttributeValues?: Record<string, unknown>;
  }) => {
    const key = part.Key ?? part.Item ?? {};
    add(writes.table, String(key.pk));
    const values = part.ExpressionAttributeValues ?? {};
    const setTo = part.Item?.gsi1pk ?? values[':pk'] ?? values[':duePartition'];
    if (typeof setTo === 'string') add(writes.index, setTo);
    // A move or a removal also deletes the old index entry: for an attempt, in its own due shard.
    const pk = String(key.pk);
    if (pk.startsWith('ATTEMPT#') && part.UpdateExpression && /gsi1/.test(part.UpdateExpression) && !part.Item) {
      add(writes.index, `DUE#${String(dueShard(pk.slice('ATTEMPT#'.length))).padStart(3, '0')}`);
    }
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (context.commandName === 'TransactWriteItemsCommand') {
        for (const entry of (input.TransactItems as Record<string, never>[]) ?? []) onWrite(Object.values(entry)[0]);
      } else if (context.commandName === 'PutItemCommand' || context.commandName === 'UpdateItemCommand') {
        onWrite(input as never);
      }
      return next(args);
    },
    { step: 'initialize', name: 'countWrites' },
  );
  return client;
}

main().catch((error: Error) => {
  console.error(`sweep bench failed: ${error.stack ?? error.message}`);
  process.exit(2);
});
