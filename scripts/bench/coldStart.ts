/**
 * The cold start of every deployed function, as a ratio to a bare `node -e 0` timed in the same run:
 * the packaged bundle (the zip `serverless package` writes) loaded with --enable-source-maps as on
 * Lambda, its configuration and stage secret read (the secret from a file: Secrets Manager is the
 * stubbed part), and its first invocation on a representative event against the local database and
 * sandbox gateway, all in one fresh process. Runs of the function and of bare node alternate.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
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

/** The first event each function gets: what it most often does. `i` makes each run's request its own. */
export type FirstEvent = (fn: ColdStartFunction, i: number) => unknown;

/** One fresh process: load the function, invoke it once, exit. Resolves to its wall time in ms. */
function coldStartOnce(entry: string, event: unknown, env: Record<string, string>): Promise<number> {
  const script = `
    const { handler } = await import(${JSON.stringify(entry)});
    const reply = await handler(JSON.parse(process.env.BENCH_EVENT), { awsRequestId: 'bench', functionName: 'bench', getRemainingTimeInMillis: () => 10000 });
    if (reply && reply.statusCode >= 500) { console.error(JSON.stringify(reply)); process.exit(1); }
    process.exit(0);`;
  return timeProcess([process.execPath, '--enable-source-maps', '--input-type=module', '-e', script], { ...env, BENCH_EVENT: JSON.stringify(event) });
}

function timeProcess(command: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`cold start failed (exit ${code}): ${stderr.slice(0, 2000)}`));
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export interface ColdStartResult {
  fn: ColdStartFunction;
  /** Median of each run's time over the bare node run next to it. */
  ratio: number;
  medianMs: number;
  bareMs: number;
}

/**
 * Alternates a cold start of `fn` with a bare `node -e 0`, `runs` times each, so both see the same
 * machine; the ratio of each pair, then their median.
 */
export async function measureColdStart(
  fn: ColdStartFunction,
  entry: string,
  event: FirstEvent,
  env: Record<string, string>,
  runs: number,
): Promise<ColdStartResult> {
  await coldStartOnce(entry, event(fn, -1), env); // warm the file cache
  const pairs: [number, number][] = [];
  for (let i = 0; i < runs; i++) {
    const cold = await coldStartOnce(entry, event(fn, i), env);
    const bare = await timeProcess([process.execPath, '-e', '0'], env);
    pairs.push([cold, bare]);
  }
  return { fn, ratio: median(pairs.map(([c, b]) => c / b)), medianMs: median(pairs.map(([c]) => c)), bareMs: median(pairs.map(([, b]) => b)) };
}

/** A signed WeChat notification for a paid trade (the bench sends the same one again: a duplicate, handled in full). */
export function wechatNotificationEvent(credentials: SandboxCredentials, transaction: object) {
  const notification = buildWechatPaymentNotification(credentials.wechat, transaction);
  return httpEvent({ path: '/notify/wechat', headers: notification.headers, body: notification.body });
}
