import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** infra/deployGuards.js: what a package or a deploy refuses before it starts. */
const { refuseLocalEndpoint, refuseBadSettings } = require('../../infra/deployGuards.js') as {
  refuseLocalEndpoint: (environment: Record<string, unknown>) => void;
  refuseBadSettings: (environment: Record<string, unknown>) => void;
};
const ROOT = join(__dirname, '..', '..');
const README_SETTINGS = {
  NOTIFY_BASE_URL: 'https://pay.example.com',
  WECHAT_APPID: 'wx0123456789abcdef',
  WECHAT_MCHID: '1900000001',
  ALIPAY_APP_ID: '2021000000000001',
  ALIPAY_SELLER_ID: '2088000000000001',
};
/** The functions' environment as serverless resolves it for prod: params as numbers, unset ones empty. */
const prodEnvironment = {
  ...README_SETTINGS,
  POWERTOOLS_SERVICE_NAME: 'paynow-prod',
  TABLE_NAME: 'paynow-prod',
  SECRET_ID: 'paynow/prod',
  DYNAMODB_ENDPOINT: '',
  INTEGRAL_FEN_PER_POINT: 1,
  PAY_TIMEOUT_MINUTES: 30,
  SWEEP_GROUPS: 4,
  SWEEP_GATEWAY_CALLS_PER_SECOND: 100,
  DISPATCH_GROUPS: 1,
  AUTO_REFUND_DUPLICATES: true,
  APP_TOKENS: 'session',
  JWT_ISSUER: '',
  SHOP_WEBHOOK_URL: '',
};

it('a deploy is refused while the shell still points the functions at the local database', () => {
  expect(() => refuseLocalEndpoint({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', TABLE_NAME: 'paynow-prod' })).toThrow(
    'DYNAMODB_ENDPOINT is set in this shell (the local database): unset it, then deploy',
  );
  expect(() => refuseLocalEndpoint({ DYNAMODB_ENDPOINT: '', TABLE_NAME: 'paynow-prod' })).not.toThrow();
});

it("settings the functions would refuse at their cold start are refused by the package, named by the functions' own check, never with their value", () => {
  expect(() => refuseBadSettings(prodEnvironment)).not.toThrow();
  expect(() => refuseBadSettings({ ...prodEnvironment, SHOP_WEBHOOK_URL: 'https://shop.example.com/paynow' })).not.toThrow();
  const refused = (changes: Record<string, unknown>) => {
    try {
      refuseBadSettings({ ...prodEnvironment, ...changes });
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('accepted');
  };
  const overHttp = refused({ SHOP_WEBHOOK_URL: 'http://shop.example.com/paynow' });
  expect(overHttp).toBe(
    'the functions would refuse these settings at their cold start: invalid configuration: SHOP_WEBHOOK_URL: must be https (http only to 127.0.0.1 or localhost)',
  );
  expect(refused({ SHOP_WEBHOOK_URL: 'https://user:hunter2@shop.example.com/' })).not.toContain('hunter2');
  expect(refused({ WECHAT_MCHID: '', DISPATCH_GROUPS: 17 })).toMatch(
    /^the functions would refuse these settings at their cold start: invalid configuration: DISPATCH_GROUPS: .*; WECHAT_MCHID: /,
  );
});

it('`serverless package` with a webhook URL over http stops before it builds anything, naming the setting', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'paynow-package-refused-'));
  try {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      SLS_TELEMETRY_DISABLED: '1',
      ESBUILD_WORK_FOLDER: '.esbuild-test-refused',
      ...README_SETTINGS,
      SHOP_WEBHOOK_URL: 'http://shop.example.com/paynow',
    };
    const failure = await promisify(execFile)(
      process.execPath,
      [require.resolve('serverless/bin/serverless.js'), 'package', '--stage', 'prod', '--param', 'alarmEmail=ops@example.com', '--package', dir],
      { cwd: ROOT, env },
    ).then(
      () => undefined,
      (error: { code?: number; stdout?: string; stderr?: string }) => error,
    );
    expect(failure?.code).not.toBe(0);
    expect(`${failure?.stdout}${failure?.stderr}`).toContain('SHOP_WEBHOOK_URL: must be https (http only to 127.0.0.1 or localhost)');
    expect(await readdir(dir)).toEqual([]);
    await expect(readdir(join(ROOT, '.esbuild-test-refused'))).rejects.toMatchObject({ code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
