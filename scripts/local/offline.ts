import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface Offline {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs `serverless offline` (the project's own serverless.yml, bundled by serverless-esbuild) with
 * the functions' environment, and resolves once the API answers HTTP.
 */
export async function startOffline(options: {
  env: Record<string, string>;
  httpPort: number;
  lambdaPort: number;
  quiet?: boolean;
  host?: string;
  /**
   * serverless offline's `--useInProcess`: every invocation runs in its own process, each bundle loaded
   * once. The default (worker threads) starts a thread per concurrent invocation, each loading its bundle
   * anew: 50 requests at once are 50 cold starts (`npm run bench -- load` compares the two).
   */
  inProcess?: boolean;
}): Promise<Offline> {
  const host = options.host ?? '127.0.0.1';
  const child = spawn(
    process.execPath,
    [
      require.resolve('serverless/bin/serverless.js'),
      'offline',
      'start',
      '--host',
      host,
      '--httpPort',
      String(options.httpPort),
      '--lambdaPort',
      String(options.lambdaPort),
      ...(options.inProcess ? ['--useInProcess'] : []),
    ],
    {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, ...options.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', ...localNodeNotice() },
      stdio: options.quiet ? 'ignore' : 'inherit',
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://${host}:${options.httpPort}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitForHttp(url, exited);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, process: child, stop };
}

/** serverless offline has no readiness signal on a stream we own: poll until it answers. */
async function waitForHttp(url: string, exited: Promise<void>, timeoutMs = 90_000): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(gone ? 'serverless offline exited before it was ready' : `serverless offline did not answer on ${url} within ${timeoutMs / 1000} s`);
}

/**
 * The AWS SDK tells every process on Node < 22 that its 2027 releases need Node 22: true of this
 * machine, never of the deployed runtime (nodejs24.x). `npm start` shows it once, not once per worker.
 */
function localNodeNotice(): Record<string, string> {
  return Number(process.versions.node.split('.')[0]) < 22 ? { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } : {};
}
