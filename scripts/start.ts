/**
 * npm start: the whole local stack in one process tree.
 * dynalite (with transactions) on :8000, the sandbox gateways on :8020, serverless offline on
 * :3000 (which runs the sweeper and the event dispatcher every minute, as AWS does), the demo receiver
 * of the shop's events on :8030, the
 * demo fixture seeded, and a ready-to-paste curl for each pay method.
 */
import { join } from 'node:path';
import { LOCAL_API_PORT, LOCAL_DYNAMODB_PORT, LOCAL_EVENTS_PORT, LOCAL_GATEWAY_PORT, LOCAL_HOST, LOCAL_LAMBDA_PORT, LOCAL_TABLE_NAME } from './local/constants';
import { DEMO_FIXTURE_FILE, DEMO_REQUESTS, demoCurl } from './local/demo';
import { startLocalDynamo } from './local/dynalite';
import { localFunctionEnvironment, localWebhookSecret, writeLocalSecret } from './local/environment';
import { startEventReceiver } from './local/eventReceiver';
import { startOffline } from './local/offline';
import { createTables } from './local/tables';
import { loadOrCreateSandboxCredentials } from './sandbox/credentials';
import { startSandboxGateway } from './sandbox/gateway';
import { seedFile } from './seed';

const ROOT = join(__dirname, '..');
const API = `http://${LOCAL_HOST}:${LOCAL_API_PORT}`;

async function main(): Promise<void> {
  const credentials = await loadOrCreateSandboxCredentials(join(ROOT, '.sandbox'), { gatewayUrl: `http://${LOCAL_HOST}:${LOCAL_GATEWAY_PORT}` });
  // The functions read their keys from this file exactly as they read the stage secret on AWS.
  const secretFile = await writeLocalSecret(credentials, join(ROOT, '.sandbox'));
  const dynamo = await startLocalDynamo({ host: LOCAL_HOST, port: LOCAL_DYNAMODB_PORT });
  await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
  await seedFile(DEMO_FIXTURE_FILE, dynamo.endpoint, LOCAL_TABLE_NAME);
  const gateway = await startSandboxGateway({ credentials, host: LOCAL_HOST, port: LOCAL_GATEWAY_PORT });
  console.log(`dynalite       ${dynamo.endpoint}  (table ${LOCAL_TABLE_NAME}, demo fixture seeded)`);
  console.log(`sandbox gateway ${gateway.url}  (WeChat Pay v3 + Alipay, keys in .sandbox/sandbox.json)`);
  console.log(`stage secret   ${secretFile}  (what Secrets Manager holds on AWS)`);
  const receiver = await startEventReceiver({ secret: localWebhookSecret(credentials), host: LOCAL_HOST, port: LOCAL_EVENTS_PORT, print: true });
  console.log(`event receiver ${receiver.url}  (the shop's webhook: verifies each signature, prints each event)`);

  const offline = await startOffline({
    env: localFunctionEnvironment(credentials, {
      tableName: LOCAL_TABLE_NAME,
      dynamodbEndpoint: dynamo.endpoint,
      notifyBaseUrl: API,
      secretFile,
      webhookUrl: receiver.url,
    }),
    host: LOCAL_HOST,
    httpPort: LOCAL_API_PORT,
    lambdaPort: LOCAL_LAMBDA_PORT,
    // Each bundle loaded once: 50 requests at once all get their answer (npm run bench -- load).
    inProcess: true,
  });
  printDemo();

  const stop = async (code: number) => {
    await Promise.allSettled([offline.stop(), gateway.close(), dynamo.close(), receiver.close()]);
    process.exit(code);
  };
  offline.process.once('exit', (code) => void stop(code ?? 1));
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
}

function printDemo(): void {
  console.log(`\npaynow is ready on ${API}. Demo (user 1001 has 5000 points, user 1002 has 20000; 1 point = 1 fen):\n`);
  for (const request of DEMO_REQUESTS) console.log(`# ${request.title}\n${demoCurl(API, request)}\n`);
  console.log('Re-seed the demo at any time (undoes the curls above): npm run seed -- scripts/fixtures/demo.json\n');
}

main().catch((error: Error) => {
  console.error(`npm start failed: ${error.message}`);
  process.exit(1);
});
