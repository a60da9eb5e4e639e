/**
 * npm run sandbox:pay -- OUT_TRADE_NO
 * The local stand-in for a user paying in the WeChat or Alipay app: the sandbox gateway marks the
 * attempt's trade paid and sends the signed notification to the local API (npm start must be running).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../lib/config';
import { channelOf } from '../lib/domain/model';
import { systemClock } from '../lib/domain/time';
import { AlipayGateway } from '../lib/gateways/alipay';
import { parseStageSecret } from '../lib/secrets/stageSecret';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { DynamoPayStore } from '../lib/store/dynamoPayStore';
import { LOCAL_API_PORT, LOCAL_DYNAMODB_ENDPOINT, LOCAL_GATEWAY_PORT, LOCAL_HOST, LOCAL_TABLE_NAME } from './local/constants';
import { LOCAL_SECRET_FILE, localFunctionEnvironment } from './local/environment';
import { loadOrCreateSandboxCredentials } from './sandbox/credentials';

const SANDBOX_DIR = join(__dirname, '..', '.sandbox');

async function main(outTradeNo: string): Promise<void> {
  const gatewayUrl = `http://${LOCAL_HOST}:${LOCAL_GATEWAY_PORT}`;
  const credentials = await loadOrCreateSandboxCredentials(SANDBOX_DIR, { gatewayUrl });
  const config = loadConfig(
    localFunctionEnvironment(credentials, {
      tableName: LOCAL_TABLE_NAME,
      dynamodbEndpoint: LOCAL_DYNAMODB_ENDPOINT,
      notifyBaseUrl: `http://${LOCAL_HOST}:${LOCAL_API_PORT}`,
      secretFile: join(SANDBOX_DIR, LOCAL_SECRET_FILE),
    }),
  );
  const db = createDocumentClient(config.dynamodbEndpoint);
  const attempt = await new DynamoPayStore(db, config.tableName).getAttempt(outTradeNo).finally(() => db.destroy());
  if (!attempt) throw new Error(`no attempt ${outTradeNo} in ${config.tableName}`);
  const channel = channelOf(attempt.method);
  if (!channel) throw new Error(`attempt ${outTradeNo} is points only: nothing to pay at a gateway`);

  // Alipay learns of an APP order only when the user opens its order string: open it, as the app would.
  if (channel === 'alipay' && (await fetch(`${gatewayUrl}/sandbox/trades/${outTradeNo}`)).status === 404) {
    const keys = parseStageSecret(await readFile(join(SANDBOX_DIR, LOCAL_SECRET_FILE), 'utf8'));
    const orderString = await new AlipayGateway({
      ...config.alipay,
      ...keys.alipay,
      notifyUrl: `${config.notifyBaseUrl}/notify/alipay`,
      now: systemClock,
    }).createPayParam({
      outTradeNo,
      amountFen: attempt.cashFen,
      subject: attempt.subject,
      expiresAt: new Date(attempt.expiresAt),
    });
    const registered = await fetch(`${gatewayUrl}/sandbox/alipay/register`, { method: 'POST', body: orderString });
    if (!registered.ok) throw new Error(`the sandbox refused the order string: ${await registered.text()}`);
  }

  const response = await fetch(`${gatewayUrl}/sandbox/pay/${outTradeNo}`, { method: 'POST', body: JSON.stringify({ notify: true }) });
  const result = (await response.json()) as { notification?: { url: string; status: number; body: string }; message?: string };
  if (!response.ok) throw new Error(`the sandbox refused to pay: ${result.message ?? response.status}`);
  console.log(
    `${channel} paid ${outTradeNo}; notification to ${result.notification?.url}: HTTP ${result.notification?.status} ${result.notification?.body ?? ''}`,
  );
}

const outTradeNo = process.argv[2];
if (!outTradeNo) {
  console.error('usage: npm run sandbox:pay -- OUT_TRADE_NO');
  process.exit(2);
}
main(outTradeNo).catch((error: Error) => {
  console.error(`sandbox:pay failed: ${error.message}`);
  process.exit(1);
});
