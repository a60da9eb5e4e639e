/**
 * The cold start of every deployed function, as a ratio to a bare `node -e 0` timed in the same run:
 * the packaged bundle (the zip `serverless package` writes) loaded as on Lambda, its configuration and
 * stage secret read through the Secrets Manager client as on AWS (only the answer is stubbed: a local
 * endpoint gives the sandbox's secret), and its first invocation on a representative event against the
 * local database and sandbox gateway, all in one fresh process; then the same kind of request a few
 * times warm, to tell the first request's setup from what the request itself costs. Runs of the
 * function and of bare node alternate.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { httpEvent } from '../local/httpEvents';
import type { SandboxCredentials } from '../sandbox/credentials';
import { buildWechatPaymentNotification } from '../sandbox/notifications';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');

export const COLD_START_FUNCTIONS = ['payOrder', 'payStatus', 'notifyWechat', 'notifyAlipay', 'sweeper'] as const;
export type ColdStartFunction = (typeof COLD_START_FUNCTIONS)[number] | 'floor';

/** Packages the functions as deployed and unpacks each zip; returns the folder of each entry. */
export async function packageFunctions(settings: Record<string, string>): Promise<Record<(typeof COLD_START_FUNCTIONS)[number], string>> {
  const out = await mkdtemp(join(tmpdir(), 'paynow-bench-package-'));
  await run(process.execPath, [require.resolve('serverless/bin/serverless.js'), 'package', '--package', out], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), SLS_TELEMETRY_DISABLED: '1', ESBUILD_WORK_FOLDER: '.esbuild-bench', ...settings },
    maxBuffer: 16 * 1024 * 1024,
  });
  const folders = {} as Record<(typeof COLD_START_FUNCTIONS)[number], string>;
  for (const fn of COLD_START_FUNCTIONS) {
    const dir = join(out, fn);
    await run('python3', ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', join(out, `${fn}.zip`), dir]);
    folders[fn] = join(dir, 'functions', fn);
  }
  return folders;
}

/**
 * The floor of any function on this stack: the DynamoDB document client (bundled the way the
 * functions are) loaded, and one GetItem sent. Written as a handler so it is timed like the functions.
 */
export async function buildFloorFunction(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'paynow-bench-floor-'));
  const source = join(dir, 'floor.ts');
  await writeFile(
    source,
    `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
     import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
     const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
     export const handler = () => db.send(new GetCommand({ TableName: process.env.TABLE_NAME, Key: { pk: 'floor', sk: 'floor' } }));`,
  );
  await build({
    entryPoints: [source],
    outdir: dir,
    nodePaths: [join(ROOT, 'node_modules')],
    bundle: true,
    minify: true,
    format: 'esm',
    splitting: true,
    outExtension: { '.js': '.mjs' },
    mainFields: ['module', 'main'],
    platform: 'node',
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'error',
  });
  return join(dir, 'floor.mjs');
}

/**
 * The events one cold process gets: `i` is the run (-1: the warm-up), `k` the invocation in it (0: the
 * cold one, then WARM_INVOCATIONS more). Each should be a request of its own, as real traffic is.
 */
export type ColdStartEvent = (fn: ColdStartFunction, i: number, k: number) => unknown;

/** Invocations after the cold one in each process, to time the same request warm. */
export const WARM_INVOCATIONS = 8;

interface ProcessTimes {
  /** Spawn to the first reply: the process's wall time less the warm invocations after it. */
  coldMs: number;
  /** Median of the warm invocations' own times: what the request costs once nothing is left to set up. */
  warmRequestMs: number;
  /** From the process's start to its handler ready (bundle loaded, config, the secret read): the init phase. */
  initMs: number;
  /** The first invocation alone. */
  firstMs: number;
}

/**
 * One fresh process: load the function (with no --enable-source-maps, as deployed: lib/sourceMappedStack.ts),
 * invoke it once cold, then WARM_INVOCATIONS times more, and exit.
 */
function coldStartOnce(entry: string, events: unknown[], env: Record<string, string>): Promise<ProcessTimes> {
  const script = `
    const { handler } = await import(${JSON.stringify(entry)});
    const initMs = performance.now();
    const events = JSON.parse(process.env.BENCH_EVENTS);
    const context = { awsRequestId: 'bench', functionName: 'bench', getRemainingTimeInMillis: () => 10000 };
    const times = [];
    let started = performance.now();
    for (const event of events) {
      const reply = await handler(event, context);
      if (reply && reply.statusCode >= 500) { console.error(JSON.stringify(reply)); process.exit(1); }
      const now = performance.now();
      times.push(now - started);
      started = now;
    }
    (await import('node:fs')).writeSync(3, JSON.stringify({ initMs, first: times[0], warm: times.slice(1) }));
    process.exit(0);`;
  // BENCH_COLD_PROFILE=DIR: a V8 CPU profile of each cold process in DIR (open in Chrome DevTools), to see where a start goes.
  const profile = process.env.BENCH_COLD_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_COLD_PROFILE}`] : [];
  return timeProcess([process.execPath, ...profile, '--input-type=module', '-e', script], { ...env, BENCH_EVENTS: JSON.stringify(events) }).then(
    ({ ms, fd3 }) => {
      const { initMs, first, warm } = JSON.parse(fd3) as { initMs: number; first: number; warm: number[] };
      return { coldMs: ms - warm.reduce((sum, t) => sum + t, 0), warmRequestMs: median(warm), initMs, firstMs: first };
    },
  );
}

/** Runs a process to its exit; what it writes to file descriptor 3 (its logs go to stdout, ignored). */
function timeProcess(command: string[], env: Record<string, string>): Promise<{ ms: number; fd3: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let fd3 = '';
    let stderr = '';
    child.stdio[3]?.on('data', (chunk) => (fd3 += chunk));
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code === 0) resolve({ ms, fd3 });
      else reject(new Error(`cold start failed (exit ${code}): ${stderr.slice(0, 2000)}`));
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export interface ColdStartResult {
  fn: ColdStartFunction;
  /** The whole cold start, up to the first reply: median of each run over the bare node run next to it. */
  ratio: number;
  /**
   * The same less what the first request costs warm (its round trips and signatures): load, config and
   * secret, and the first invocation's setup only. Median over the runs, as `ratio`.
   */
  setupRatio: number;
  medianMs: number;
  warmRequestMs: number;
  /** Medians of the init phase (to the handler ready) and of the first invocation alone. */
  initMs: number;
  firstMs: number;
  bareMs: number;
}

/**
 * Alternates a cold start of `fn` with a bare `node -e 0`, `runs` times each, so both see the same
 * machine; the ratio of each pair, then their median.
 */
export async function measureColdStart(
  fn: ColdStartFunction,
  entry: string,
  event: ColdStartEvent,
  env: Record<string, string>,
  runs: number,
): Promise<ColdStartResult> {
  const eventsOf = (i: number) => Array.from({ length: 1 + WARM_INVOCATIONS }, (_, k) => event(fn, i, k));
  await coldStartOnce(entry, eventsOf(-1), env); // warm the file cache
  const pairs: [ProcessTimes, number][] = [];
  for (let i = 0; i < runs; i++) {
    const cold = await coldStartOnce(entry, eventsOf(i), env);
    const bare = await timeProcess([process.execPath, '-e', '0'], env);
    pairs.push([cold, bare.ms]);
  }
  return {
    fn,
    ratio: median(pairs.map(([c, b]) => c.coldMs / b)),
    setupRatio: median(pairs.map(([c, b]) => (c.coldMs - c.warmRequestMs) / b)),
    medianMs: median(pairs.map(([c]) => c.coldMs)),
    warmRequestMs: median(pairs.map(([c]) => c.warmRequestMs)),
    initMs: median(pairs.map(([c]) => c.initMs)),
    firstMs: median(pairs.map(([c]) => c.firstMs)),
    bareMs: median(pairs.map(([, b]) => b)),
  };
}

/**
 * Secrets Manager's answer to GetSecretValue, from a local endpoint: the functions read the stage secret
 * through the deployed code path (Powertools Parameters, the SDK client, a signed request) and only the
 * network answer is stubbed. Returns the environment that points the functions at it, with the
 * session credentials Lambda gives every function.
 */
const BENCH_SECRET_ID = 'paynow/bench';

export async function stubSecretsManager(secretFile: string): Promise<{ env: Record<string, string>; close(): Promise<void> }> {
  const secretString = await readFile(secretFile, 'utf8');
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body || '{}') as { SecretId?: string };
      const known = request.headers['x-amz-target'] === 'secretsmanager.GetSecretValue' && SecretId === BENCH_SECRET_ID;
      response.writeHead(known ? 200 : 400, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(
        JSON.stringify(
          known
            ? { ARN: 'arn:aws:secretsmanager:ap-east-1:000000000000:secret:paynow/bench-AbCdEf', Name: SecretId, SecretString: secretString, VersionId: 'v1' }
            : { __type: 'ResourceNotFoundException', message: 'no such secret' },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    env: {
      SECRET_ID: BENCH_SECRET_ID,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_ACCESS_KEY_ID: 'ASIABENCHBENCHBENCH0',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_SESSION_TOKEN: 'bench',
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A signed WeChat notification for a paid trade (the bench sends the same one again: a duplicate, handled in full). */
export function wechatNotificationEvent(credentials: SandboxCredentials, transaction: object) {
  const notification = buildWechatPaymentNotification(credentials.wechat, transaction);
  return httpEvent({ path: '/notify/wechat', headers: notification.headers, body: notification.body });
}
