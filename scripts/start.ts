/**
 * npm start: the whole local stack in one process tree.
 * dynalite (with transactions) on :8000, the sandbox gateways on :8020, serverless offline on
 * :3000, the demo fixture seeded, and a ready-to-paste curl for each pay method.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createTables } from './local/tables';
import { startLocalDynamo } from './local/dynalite';
import { localFunctionEnvironment } from './local/environment';
import {
  LOCAL_API_PORT,
  LOCAL_DYNAMODB_PORT,
  LOCAL_GATEWAY_PORT,
  LOCAL_HOST,
  LOCAL_LAMBDA_PORT,
  LOCAL_TABLE_NAME,
} from './local/constants';
import { loadOrCreateSandboxCredentials } from './sandbox/credentials';
import { startSandboxGateway } from './sandbox/gateway';
import { seedFile } from './seed';

const ROOT = join(__dirname, '..');
const DEMO_FIXTURE = join(__dirname, 'fixtures', 'demo.json');
const API = `http://${LOCAL_HOST}:${LOCAL_API_PORT}`;

async function main(): Promise<void> {
  const credentials = await loadOrCreateSandboxCredentials(join(ROOT, '.sandbox'), { gatewayUrl: `http://${LOCAL_HOST}:${LOCAL_GATEWAY_PORT}` });
  const dynamo = await startLocalDynamo({ host: LOCAL_HOST, port: LOCAL_DYNAMODB_PORT });
  await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
  await seedFile(DEMO_FIXTURE, dynamo.endpoint, LOCAL_TABLE_NAME);
  const gateway = await startSandboxGateway({ credentials, host: LOCAL_HOST, port: LOCAL_GATEWAY_PORT });
  console.log(`dynalite       ${dynamo.endpoint}  (table ${LOCAL_TABLE_NAME}, demo fixture seeded)`);
  console.log(`sandbox gateway ${gateway.url}  (WeChat Pay v3 + Alipay, keys in .sandbox/sandbox.json)`);

  const offline = spawn(
    process.execPath,
    [require.resolve('serverless/bin/serverless.js'), 'offline', 'start', '--httpPort', String(LOCAL_API_PORT), '--lambdaPort', String(LOCAL_LAMBDA_PORT)],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...localFunctionEnvironment(credentials, { tableName: LOCAL_TABLE_NAME, dynamodbEndpoint: dynamo.endpoint, notifyBaseUrl: API }),
        SLS_TELEMETRY_DISABLED: '1',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let ready = false;
  offline.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (!ready && /Server ready/.test(chunk.toString())) {
      ready = true;
      printDemo();
    }
  });

  const stop = async (code: number) => {
    offline.kill('SIGTERM');
    await Promise.allSettled([gateway.close(), dynamo.close()]);
    process.exit(code);
  };
  offline.on('exit', (code) => void stop(code ?? 1));
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
}

function curl(token: string, body: Record<string, number | string>): string {
  return `curl -s -X POST ${API}/order/pay -H 'content-type: application/json' -H 'token: ${token}' -d '${JSON.stringify(body)}'`;
}

function printDemo(): void {
  const lines = [
    ['WeChat Pay (order 501: 88.00 + 12.00 courier freight)', curl('demo-1001', { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 })],
    ['Alipay (order 502: 199.00, free shipping)', curl('demo-1001', { order_id: 502, pay_method: 2, pay_price: '199.00', pay_integral: 0, address_id: 11, freight_mode: 1 })],
    ['WeChat + 3000 points (order 503: 59.90, freight collected on delivery)', curl('demo-1001', { order_id: 503, pay_method: 4, pay_price: '29.90', pay_integral: 3000, address_id: 11, freight_mode: 2, freight_json_arr_key: 1 })],
    ['Alipay + 1000 points (order 504: 128.00)', curl('demo-1001', { order_id: 504, pay_method: 5, pay_price: '118.00', pay_integral: 1000, address_id: 11, freight_mode: 1 })],
    ['Points only (order 505: 45.00 = 4500 points)', curl('demo-1002', { order_id: 505, pay_method: 3, pay_price: '0', pay_integral: 4500, address_id: 12, freight_mode: 1 })],
    ['Expired token', curl('demo-expired', { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 })],
  ];
  console.log(`\npaynow is ready on ${API}. Demo (user 1001 has 5000 points, user 1002 has 20000; 1 point = 1 fen):\n`);
  for (const [title, command] of lines) console.log(`# ${title}\n${command}\n`);
  console.log('Re-seed the demo at any time: npm run seed -- scripts/fixtures/demo.json\n');
}

main().catch((error: Error) => {
  console.error(`npm start failed: ${error.message}`);
  process.exit(1);
});
