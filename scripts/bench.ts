/**
 * npm run bench [-- requests|cost|cold|load]: measurements as ratios to a floor timed in the same run (absolute
 * times on a shared machine mean little). Not part of CI.
 * - load: the local stack (serverless offline) under 50 concurrent requests, in each of its modes;
 * - requests: what a pay costs against the in-process stack, as ratios to one DynamoDB GetItem;
 * - cost: DynamoDB's request units for one successful payment, step by step, and its price;
 * - cold: each deployed function's whole cold start, as a ratio to a bare `node -e 0` (BENCH_COLD_ROWS=floor,payOrder
 *   picks rows; BENCH_INHERIT_ENV=1 keeps this shell's environment; BENCH_COLD_PROFILE=DIR writes a CPU profile of
 *   each cold process there, README "Bundles and cold starts").
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { type App, createApp } from '../lib/app';
import { loadConfig } from '../lib/config';
import { logger } from '../lib/log';
import { completePayment } from '../lib/pay/completePayment';
import { payOrder } from '../lib/pay/payOrder';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { keys } from '../lib/store/keys';
import {
  buildFloorFunction,
  COLD_START_FUNCTIONS,
  type ColdStartEvent,
  type ColdStartFunction,
  measureColdStart,
  packageFunctions,
  stubSecretsManager,
  WARM_INVOCATIONS,
  wechatNotificationEvent,
} from './bench/coldStart';
import { benchCosts } from './bench/costBench';
import { benchLocalLoad } from './bench/localLoad';
import { payFloor } from './bench/payFloor';
import { LOCAL_TABLE_NAME } from './local/constants';
import { type LocalDynamo, startLocalDynamo } from './local/dynalite';
import { localFunctionEnvironment, writeLocalSecret } from './local/environment';
import { sampleAddress, writeFixture } from './local/fixtures';
import { httpEvent, lambdaContext } from './local/httpEvents';
import { createTables } from './local/tables';
import { generateSandboxCredentials, type SandboxCredentials } from './sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from './sandbox/gateway';
import { buildAlipayPaymentNotification } from './sandbox/notifications';

const N = 200;
const COLD_RUNS = 15;

interface Stack {
  dynamo: LocalDynamo;
  gateway: SandboxGateway;
  credentials: SandboxCredentials;
  env: Record<string, string>;
}

async function startStack(): Promise<Stack> {
  const dynamo = await startLocalDynamo();
  await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
  const generated = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  const gateway = await startSandboxGateway({ credentials: generated });
  const credentials = {
    wechat: { ...generated.wechat, gateway_url: gateway.url },
    alipay: { ...generated.alipay, gateway_url: `${gateway.url}/alipay/gateway.do` },
  };
  const secretFile = await writeLocalSecret(credentials, await mkdtemp(join(tmpdir(), 'paynow-bench-')));
  const env = localFunctionEnvironment(credentials, {
    tableName: LOCAL_TABLE_NAME,
    dynamodbEndpoint: dynamo.endpoint,
    notifyBaseUrl: 'http://127.0.0.1:1',
    secretFile,
  });
  return { dynamo, gateway, credentials, env };
}

async function timeEach(label: string, runTimes: number, work: (i: number) => Promise<unknown>): Promise<{ label: string; median: number; p95: number }> {
  const samples: number[] = [];
  for (let i = 0; i < runTimes; i++) {
    const start = process.hrtime.bigint();
    await work(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { label, median: samples[Math.floor(runTimes / 2)], p95: samples[Math.floor(runTimes * 0.95)] };
}

async function benchRequests(stack: Stack): Promise<void> {
  const app = createApp(loadConfig(stack.env));
  const db = createDocumentClient(stack.dynamo.endpoint);
  // 500 points do not cover an 88.00 order, so the cash methods are allowed; points-only gets more below.
  const users = Array.from({ length: N }, (_, i) => ({
    user_id: i + 1,
    integral: 500,
    tokens: [{ token: `bench-${i + 1}`, expires_at: '2099-01-01T00:00:00+08:00' }],
  }));
  await writeFixture(db, LOCAL_TABLE_NAME, {
    users,
    addresses: users.map((u) => sampleAddress(u.user_id, u.user_id)),
    orders: users.flatMap((u) =>
      [1, 2, 3, 4].map((k) => ({ order_id: u.user_id * 10 + k, user_id: u.user_id, goods_name: 'g', goods_price: '88.00', free_shipping: true })),
    ),
  });
  const deps = { store: app.store, gateways: app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30 };
  const input = (user: number, k: number, method: 1 | 3 | 4) => ({
    orderId: user * 10 + k,
    addressId: user,
    method,
    priceFen: method === 3 ? 0 : method === 4 ? 8700 : 8800,
    points: method === 3 ? 8800 : method === 4 ? 100 : 0,
    freightMode: 1,
    freightKey: 0,
  });

  const outTradeNos: string[] = [];
  const results = [
    await timeEach('GetItem (baseline)', N, (i) =>
      db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.order(i * 10 + 11), ConsistentRead: true })),
    ),
    await timeEach('pay WeChat + points (read, transaction, signed prepay)', N, async (i) => {
      outTradeNos.push((await payOrder(deps, i + 1, input(i + 1, 1, 4))).outTradeNo);
    }),
    await timeEach('pay again, same choice (read, signed prepay)', N, (i) => payOrder(deps, i + 1, input(i + 1, 1, 4))),
    await timeEach('notification completes it (read x2, transaction)', N, (i) =>
      completePayment(app, { channel: 'wechat', outTradeNo: outTradeNos[i], transactionId: `t${i}`, amountFen: 8700, paidAt: new Date().toISOString() }),
    ),
  ];
  const floorRatio = await benchPayAgainstFloor(stack, db, app);
  await writeFixture(db, LOCAL_TABLE_NAME, { users: users.map((u) => ({ ...u, integral: 100_000 })) });
  results.push(await timeEach('pay with points only (read, transaction)', N, (i) => payOrder(deps, i + 1, input(i + 1, 3, 3))));

  const base = results[0].median;
  console.log(`\nrequests: ${N} runs each, in-process dynalite and sandbox gateway on loopback`);
  for (const r of results)
    console.log(`  ${r.label.padEnd(58)} median ${(r.median / base).toFixed(1).padStart(5)}x GetItem   p95 ${(r.p95 / base).toFixed(1).padStart(5)}x`);
  console.log(`  (GetItem median here: ${base.toFixed(2)} ms)`);
  console.log(floorRatio);
  db.destroy();
}

/**
 * POST /order/pay with WeChat + points, through the deployed handler as the app calls it (token,
 * body, envelope), against its floor (scripts/bench/payFloor.ts) measured in the same run, each run of
 * one alternating with one of the other so that the machine's moods fall on both.
 */
async function benchPayAgainstFloor(stack: Stack, db: DynamoDBDocumentClient, app: App): Promise<string> {
  Object.assign(process.env, stack.env);
  const { handler } = await import('../functions/payOrder/handler');
  // Logged at INFO as deployed: each line is formatted, then dropped here rather than printed.
  logger.setLogLevel('INFO');
  const print = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  const pays: number[] = [];
  const floors: number[] = [];
  const time = async (samples: number[], work: () => Promise<unknown>) => {
    const start = process.hrtime.bigint();
    await work();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  };
  try {
    for (let i = 0; i < N; i++) {
      const user = i + 1;
      const body = { order_id: user * 10 + 4, pay_method: 4, pay_price: '87.00', pay_integral: 100, address_id: user, freight_mode: 1 };
      const event = httpEvent({ path: '/order/pay', headers: { token: `bench-${user}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await time(pays, async () => {
        const { body: answer } = (await handler(event, lambdaContext)) as { body?: string };
        if (JSON.parse(String(answer)).status !== 200) throw new Error(`bench pay refused: ${answer}`);
      });
      const floor = { token: `bench-${user}`, userId: user, orderId: user * 10 + 2, addressId: user, cashFen: 8700, points: 100 };
      await time(floors, () => payFloor(db, app.gateways.wechat, floor, i));
    }
  } finally {
    process.stdout.write = print;
    logger.setLogLevel('SILENT');
  }
  const median = (samples: number[]) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  const [pay, floor] = [median(pays), median(floors)];
  return [
    `\npay WeChat + points against its floor: ${N} runs each, alternating`,
    `  floor (session read, one read of 3 items, one transactional write of 4 items, signed prepay + pay object)  median ${floor.toFixed(2)} ms`,
    `  POST /order/pay through its handler (token, body, quote, prepay, the write with its prepay id, envelope)      median ${pay.toFixed(2)} ms`,
    `  pay / floor: ${(pay / floor).toFixed(2)}x (target: at most 1.3x)`,
  ].join('\n');
}

async function benchColdStarts(stack: Stack): Promise<void> {
  const entries = await packageFunctions({
    NOTIFY_BASE_URL: 'https://pay.example.com',
    WECHAT_APPID: 'wx1',
    WECHAT_MCHID: '1',
    ALIPAY_APP_ID: '2',
    ALIPAY_SELLER_ID: '3',
  });
  const app = createApp(loadConfig(stack.env));
  const db = createDocumentClient(stack.dynamo.endpoint);
  const payer = 90_001;
  // orders[0..2] are set up below; every pay of the cold runs (run i = -1 is the warm-up) pays an order of
  // its own from orders[5].
  const paysPerRun = 1 + WARM_INVOCATIONS;
  const orders = Array.from({ length: 5 + (COLD_RUNS + 1) * paysPerRun }, (_, i) => payer * 1000 + i);
  await writeFixture(db, LOCAL_TABLE_NAME, {
    users: [{ user_id: payer, integral: 1000, tokens: [{ token: 'bench-token', expires_at: '2099-01-01T00:00:00+08:00' }] }],
    addresses: [sampleAddress(payer, payer)],
    orders: orders.map((order_id) => ({ order_id, user_id: payer, goods_name: 'g', goods_price: '88.00', free_shipping: true })),
  });
  // Paid attempts whose notifications each run sends again: verified, decrypted, read and acknowledged.
  const deps = { store: app.store, gateways: app.gateways, fenPerPoint: 1, payTimeoutMinutes: 30 };
  const payWith = async (orderId: number, method: 1 | 2) =>
    (await payOrder(deps, payer, { orderId, addressId: payer, method, priceFen: 8800, points: 0, freightMode: 1, freightKey: 0 })).outTradeNo;
  const wechatPaid = await payWith(orders[0], 1);
  const { transactionId } = stack.gateway.pay(wechatPaid);
  await completePayment(app, { channel: 'wechat', outTradeNo: wechatPaid, transactionId, amountFen: 8800, paidAt: new Date().toISOString() });
  const alipayPaid = await payWith(orders[1], 2);
  await completePayment(app, {
    channel: 'alipay',
    outTradeNo: alipayPaid,
    transactionId: '2026000000000001',
    amountFen: 8800,
    paidAt: new Date().toISOString(),
  });
  const alipayBody = buildAlipayPaymentNotification(stack.credentials.alipay, {
    out_trade_no: alipayPaid,
    trade_no: '2026000000000001',
    trade_status: 'TRADE_SUCCESS',
    total_amount: '88.00',
    gmt_payment: '2026-11-29 10:00:00',
  }).body;
  const paying = orders[2];
  await payWith(paying, 1);

  const coldStartEvent: ColdStartEvent = (fn, i, k) => {
    const pay = { order_id: orders[5 + (i + 1) * paysPerRun + k], pay_method: 1, pay_price: '88.00', pay_integral: 0, address_id: payer, freight_mode: 1 };
    switch (fn) {
      case 'payOrder':
        return httpEvent({ path: '/order/pay', headers: { token: 'bench-token', 'content-type': 'application/json' }, body: JSON.stringify(pay) });
      case 'payStatus':
        return httpEvent({ method: 'GET', path: '/order/pay/status', headers: { token: 'bench-token' }, query: { order_id: String(paying) } });
      case 'notifyWechat':
        return wechatNotificationEvent(stack.credentials, {
          appid: stack.credentials.wechat.appid,
          mchid: stack.credentials.wechat.mchid,
          out_trade_no: wechatPaid,
          transaction_id: transactionId,
          trade_type: 'APP',
          trade_state: 'SUCCESS',
          success_time: '2026-11-29T10:00:00+08:00',
          amount: { total: 8800, payer_total: 8800, currency: 'CNY', payer_currency: 'CNY' },
        });
      case 'notifyAlipay':
        return httpEvent({ path: '/notify/alipay', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: alipayBody });
      case 'sweeper':
        // As its schedule sends it (one per group; group 0 also follows up refunds).
        return { group: 0 };
      case 'floor':
        return {};
    }
  };

  // The environment a function has on Lambda: nothing inherited from this shell (NODE_EXTRA_CA_CERTS,
  // set on some machines, makes every node start read the whole CA bundle and would flatter the ratios).
  // BENCH_INHERIT_ENV=1 runs both sides in this shell's environment instead.
  const inherited = process.env.BENCH_INHERIT_ENV === '1' ? (process.env as Record<string, string>) : { PATH: process.env.PATH ?? '' };
  const secretsManager = await stubSecretsManager(stack.env.SECRET_ID.replace(/^file:/, ''));
  const env: Record<string, string> = { ...inherited, ...stack.env, ...secretsManager.env, POWERTOOLS_METRICS_DISABLED: 'false' };
  // On Node < 22 the AWS SDK prints a notice about its 2027 releases; the deployed runtime never does.
  if (Number(process.versions.node.split('.')[0]) < 22) env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  console.log(
    `\ncold starts: ${COLD_RUNS} runs each on Node ${process.versions.node}, each alternating with a bare \`node -e 0\` in the same ${process.env.BENCH_INHERIT_ENV === '1' ? "shell's" : 'clean'} environment.`,
  );
  console.log('  Load the deployed bundle, read config and the stage secret (through the Secrets Manager client; a local endpoint');
  console.log('  answers), first invocation against the local database and sandbox gateway; all one fresh process. Then');
  console.log(`  ${WARM_INVOCATIONS} more of the same request in it: "setup" is the cold start less that request warm (its own round`);
  console.log('  trips and signatures).');
  const rows: [ColdStartFunction, string][] = [
    ['floor', await buildFloorFunction()],
    ...COLD_START_FUNCTIONS.map((fn): [ColdStartFunction, string] => [fn, join(entries[fn], 'lambda.mjs')]),
  ];
  // The sweeper's first run reads the first page of every due shard of its group, 8 at a time; the local
  // database serves them one after another, where DynamoDB serves them side by side. It runs once with this
  // stage's groups (4: 32 shards each) and once with prod's (64: 2 shards each).
  const measured = [
    ...rows.map(([fn, entry]) => ({ fn, entry, label: fn as string, env })),
    { fn: 'sweeper' as const, entry: join(entries.sweeper, 'lambda.mjs'), label: 'sweeper (prod)', env: { ...env, SWEEP_GROUPS: '64' } },
  ];
  const only = process.env.BENCH_COLD_ROWS?.split(',');
  for (const { fn, entry, label, env: fnEnv } of measured.filter((row) => !only || only.includes(row.label))) {
    const result = await measureColdStart(fn, entry, coldStartEvent, fnEnv, COLD_RUNS);
    console.log(
      `  ${label.padEnd(14)} ${result.ratio.toFixed(2).padStart(5)}x bare node, setup ${result.setupRatio.toFixed(2).padStart(5)}x   (median ${result.medianMs.toFixed(0)} ms to the first reply: init ${result.initMs.toFixed(0)}, first request ${result.firstMs.toFixed(0)}; the request warm ${result.warmRequestMs.toFixed(0)} ms; bare node ${result.bareMs.toFixed(0)} ms)`,
    );
  }
  console.log('  floor: the DynamoDB client alone, bundled the same way, loaded and sending one GetItem: no function can start faster.');
  await secretsManager.close();
  db.destroy();
}

async function seedWith(stack: Stack, fixture: Parameters<typeof writeFixture>[2]): Promise<void> {
  const db = createDocumentClient(stack.dynamo.endpoint);
  try {
    await writeFixture(db, LOCAL_TABLE_NAME, fixture);
  } finally {
    db.destroy();
  }
}

async function main(): Promise<void> {
  logger.setLogLevel('SILENT');
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const only = process.argv[2];
  // What the run writes to the temp folder (the packaged functions, the floor, the secret) goes in one folder, removed at the end.
  const scratch = await mkdtemp(join(tmpdir(), 'paynow-bench-'));
  process.env.TMPDIR = scratch;
  try {
    await benchAll(only);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function benchAll(only: string | undefined): Promise<void> {
  const stack = await startStack();
  try {
    if (!only || only === 'requests') await benchRequests(stack);
    if (!only || only === 'cost')
      await benchCosts({ ...stack, endpoint: stack.dynamo.endpoint, app: createApp(loadConfig(stack.env)), seed: (fixture) => seedWith(stack, fixture) });
    if (!only || only === 'cold') await benchColdStarts(stack);
    if (!only || only === 'load') {
      const db = createDocumentClient(stack.dynamo.endpoint);
      await benchLocalLoad({ ...stack, seed: (fixture) => writeFixture(db, LOCAL_TABLE_NAME, fixture) }, { http: 3100, lambda: 3102 });
      db.destroy();
    }
  } finally {
    await stack.gateway.close();
    await stack.dynamo.close();
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
