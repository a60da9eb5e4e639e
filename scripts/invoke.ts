/**
 * npm run invoke -- FUNCTION [EVENT_FILE]
 * Runs one function once, as deployed (bundled by serverless-esbuild), on an event file, with
 * `serverless invoke local`: no HTTP, no serverless offline. It uses the database, the sandbox
 * gateways and the stage secret of the local stack, so `npm start` must be running.
 *
 * @example npm run invoke -- payOrder events/payOrder.json
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_API_PORT, LOCAL_DYNAMODB_ENDPOINT, LOCAL_GATEWAY_PORT, LOCAL_HOST, LOCAL_TABLE_NAME } from './local/constants';
import { LOCAL_SECRET_FILE, localFunctionEnvironment } from './local/environment';
import { loadOrCreateSandboxCredentials } from './sandbox/credentials';

const ROOT = join(__dirname, '..');

async function main(fn: string, eventFile = `events/${fn}.json`): Promise<number> {
  const sandbox = join(ROOT, '.sandbox');
  if (!existsSync(join(sandbox, LOCAL_SECRET_FILE))) throw new Error('no local stage secret: run `npm start` first (it writes .sandbox/secret.json)');
  const credentials = await loadOrCreateSandboxCredentials(sandbox, { gatewayUrl: `http://${LOCAL_HOST}:${LOCAL_GATEWAY_PORT}` });
  const env = localFunctionEnvironment(credentials, {
    tableName: LOCAL_TABLE_NAME,
    dynamodbEndpoint: LOCAL_DYNAMODB_ENDPOINT,
    notifyBaseUrl: `http://${LOCAL_HOST}:${LOCAL_API_PORT}`,
    secretFile: join(sandbox, LOCAL_SECRET_FILE),
  });
  const result = spawnSync(process.execPath, [require.resolve('serverless/bin/serverless.js'), 'invoke', 'local', '--function', fn, '--path', eventFile], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ...env, SLS_TELEMETRY_DISABLED: '1', ESBUILD_WORK_FOLDER: '.esbuild-invoke' },
  });
  return result.status ?? 1;
}

const [fn, eventFile] = process.argv.slice(2);
if (!fn) {
  console.error('usage: npm run invoke -- FUNCTION [EVENT_FILE]   (npm start must be running)');
  process.exit(2);
}
main(fn, eventFile).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`invoke failed: ${error.message}`);
    process.exit(1);
  },
);
