import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type App, createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { createDocumentClient } from '../../lib/store/dynamoClient';
import { type ReconcileReport, reconcile } from '../../lib/store/reconcile';
import { LOCAL_TABLE_NAME } from '../../scripts/local/constants';
import { type LocalDynamo, startLocalDynamo } from '../../scripts/local/dynalite';
import { localFunctionEnvironment, writeLocalSecret } from '../../scripts/local/environment';
import { type Fixture, writeFixture } from '../../scripts/local/fixtures';
import { createTables } from '../../scripts/local/tables';
import { generateSandboxCredentials, type SandboxCredentials } from '../../scripts/sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from '../../scripts/sandbox/gateway';

/** A real local stack for one test file: dynalite with transactions, the sandbox gateways, the app. */
export interface TestStack {
  app: App;
  env: Record<string, string>;
  credentials: SandboxCredentials;
  dynamo: LocalDynamo;
  /** A document client on this stack's database, for raw reads and writes; closed with the stack. */
  db: DynamoDBDocumentClient;
  gateway: SandboxGateway;
  seed(fixture: Fixture): Promise<void>;
  /** `npm run reconcile` on this stack's database. */
  reconcile(): Promise<ReconcileReport>;
  close(): Promise<void>;
}

/** The table serverless.yml names for stage dev; each test file has a database of its own. */
export const TABLE = LOCAL_TABLE_NAME;

let credentialsOnce: Promise<SandboxCredentials> | undefined;

export async function startTestStack(options: { notifyBaseUrl?: string; env?: Record<string, string> } = {}): Promise<TestStack> {
  const dynamo = await startLocalDynamo();
  await createTables(dynamo.endpoint, TABLE);
  // Key generation is the slow part; one set per test file is enough. The gateway URL is patched in below.
  const generated = await (credentialsOnce ??= generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' }));
  const gateway = await startSandboxGateway({ credentials: generated });
  const credentials: SandboxCredentials = {
    wechat: { ...generated.wechat, gateway_url: gateway.url },
    alipay: { ...generated.alipay, gateway_url: `${gateway.url}/alipay/gateway.do` },
  };
  const secretDir = await mkdtemp(join(tmpdir(), 'paynow-secret-'));
  const secretFile = await writeLocalSecret(credentials, secretDir);
  const env = {
    ...localFunctionEnvironment(credentials, {
      tableName: TABLE,
      dynamodbEndpoint: dynamo.endpoint,
      notifyBaseUrl: options.notifyBaseUrl ?? 'http://127.0.0.1:3999',
      secretFile,
    }),
    ...options.env,
  };
  const app = createApp(loadConfig(env));
  const db = createDocumentClient(dynamo.endpoint);
  return {
    app,
    env,
    credentials,
    dynamo,
    db,
    gateway,
    seed: (fixture) => writeFixture(db, TABLE, fixture),
    reconcile: () => reconcile(db, TABLE),
    close: async () => {
      db.destroy();
      await gateway.close();
      await dynamo.close();
      // Every test file starts a stack: left behind, their secrets pile up in the temp folder by the thousand.
      await rm(secretDir, { recursive: true, force: true });
    },
  };
}

/**
 * The end of every suite on a stack: its books must balance (reconcile finds no problem), and the
 * stack is closed whatever reconcile says, so a failure fails the suite instead of leaving jest hanging.
 */
export async function expectBalancedBooksThenClose(stack: TestStack, ...alsoClose: (() => unknown)[]): Promise<void> {
  try {
    expect((await stack.reconcile()).problems).toEqual([]);
  } finally {
    for (const close of alsoClose) await close();
    await stack.close();
  }
}
