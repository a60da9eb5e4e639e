/**
 * npm run bench: what a pay costs against the local stack, as ratios to one DynamoDB GetItem
 * measured in the same run (absolute times on a shared machine mean little). Not part of CI.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createApp } from '../lib/app';
import { loadConfig } from '../lib/config';
import { completePayment } from '../lib/pay/completePayment';
import { payOrder } from '../lib/pay/payOrder';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { keys } from '../lib/store/dynamoPayStore';
import { writeFixture } from '../lib/store/fixtures';
import { LOCAL_TABLE_NAME } from './local/constants';
import { startLocalDynamo } from './local/dynalite';
import { localFunctionEnvironment, writeLocalSecret } from './local/environment';
import { createTables } from './local/tables';
import { generateSandboxCredentials } from './sandbox/credentials';
import { startSandboxGateway } from './sandbox/gateway';

const N = 200;

async function timeEach(label: string, run: (i: number) => Promise<unknown>): Promise<{ label: string; median: number; p95: number }> {
  const samples: number[] = [];
  for (let i = 0; i < N; i++) {
    const start = process.hrtime.bigint();
    await run(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { label, median: samples[Math.floor(N / 2)], p95: samples[Math.floor(N * 0.95)] };
}

async function main(): Promise<void> {
  process.env.LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const dynamo = await startLocalDynamo();
  await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
  const generated = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  const gateway = await startSandboxGateway({ credentials: generated });
  const credentials = { wechat: { ...generated.wechat, gateway_url: gateway.url }, alipay: { ...generated.alipay, gateway_url: `${gateway.url}/alipay/gateway.do` } };
  const secretFile = await writeLocalSecret(credentials, await mkdtemp(join(tmpdir(), 'paynow-bench-')));
  const app = createApp(
    loadConfig(localFunctionEnvironment(credentials, { tableName: LOCAL_TABLE_NAME, dynamodbEndpoint: dynamo.endpoint, notifyBaseUrl: 'http://127.0.0.1:1', secretFile })),
  );
  const db = createDocumentClient(dynamo.endpoint);
  // 500 points do not cover an 88.00 order, so the cash methods are allowed; points-only gets more below.
  const users = Array.from({ length: N }, (_, i) => ({ user_id: i + 1, integral: 500, tokens: [] }));
  await writeFixture(db, LOCAL_TABLE_NAME, {
    users,
    addresses: users.map((u) => ({ address_id: u.user_id, user_id: u.user_id, name: 'n', phone: 'p', province: 'p', city: 'c', district: 'd', detail: 'd' })),
    orders: users.flatMap((u) => [1, 2, 3].map((k) => ({ order_id: u.user_id * 10 + k, user_id: u.user_id, goods_name: 'g', goods_price: '88.00', free_shipping: true }))),
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
    await timeEach('GetItem (baseline)', (i) => db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.order(i * 10 + 11), ConsistentRead: true }))),
    await timeEach('pay WeChat + points (read, transaction, signed prepay)', async (i) => {
      outTradeNos.push((await payOrder(deps, i + 1, input(i + 1, 1, 4))).outTradeNo);
    }),
    await timeEach('pay again, same choice (read, signed prepay)', (i) => payOrder(deps, i + 1, input(i + 1, 1, 4))),
    await timeEach('notification completes it (read x2, transaction)', (i) =>
      completePayment(app, { channel: 'wechat', outTradeNo: outTradeNos[i], transactionId: `t${i}`, amountFen: 8700, paidAt: new Date().toISOString() }),
    ),
  ];
  await writeFixture(db, LOCAL_TABLE_NAME, { users: users.map((u) => ({ ...u, integral: 100_000 })) });
  results.push(await timeEach('pay with points only (read, transaction)', (i) => payOrder(deps, i + 1, input(i + 1, 3, 3))));

  const base = results[0].median;
  console.log(`${N} runs each, in-process dynalite and sandbox gateway on loopback:`);
  for (const r of results) console.log(`  ${r.label.padEnd(58)} median ${(r.median / base).toFixed(1).padStart(5)}x GetItem   p95 ${(r.p95 / base).toFixed(1).padStart(5)}x`);
  console.log(`  (GetItem median here: ${base.toFixed(2)} ms)`);
  db.destroy();
  await gateway.close();
  await dynamo.close();
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
