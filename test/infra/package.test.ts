import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { METRIC_CATALOGUE, type MetricName } from '../../lib/metrics';
import { generateSandboxCredentials, type SandboxCredentials } from '../../scripts/sandbox/credentials';

/**
 * `serverless package --stage prod`, offline and without AWS credentials, as a new user would run it
 * with the README's settings: what CloudFormation would get, and what every zip holds. Packaged twice:
 * with the non-secret settings only, and with the old key variables also set in the environment,
 * which must be ignored.
 */
const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const FUNCTIONS = ['payOrder', 'payStatus', 'notifyWechat', 'notifyAlipay', 'notifyWechatRefund', 'refundOrder', 'shopCommand', 'sweeper', 'dispatchEvents'];
const README_SETTINGS = {
  NOTIFY_BASE_URL: 'https://pay.example.com',
  WECHAT_APPID: 'wx0123456789abcdef',
  WECHAT_MCHID: '1900000001',
  ALIPAY_APP_ID: '2021000000000001',
  ALIPAY_SELLER_ID: '2088000000000001',
};
/** Bytes: what each function may ship, and what it may load before its first request. */
const BUDGET = { zip: 1_400_000, allJs: 1_900_000, eagerJs: 400_000 };

interface Packaged {
  dir: string;
  template: Template;
  /** Every file the package wrote, as text (zips expanded): `zip!entry` for zip entries. */
  files: Map<string, string>;
  zipSizes: Map<string, number>;
  /** What the packaging left in its temp folder (TMPDIR). */
  leftInTmp: string[];
}
type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string; Condition?: string };
type Template = { Resources: Record<string, Resource> };

let credentials: SandboxCredentials;
let plain: Packaged;
let withOldKeys: Packaged;
/** Folders this file writes packages into: removed at its end (each run writes several megabytes). */
const written: string[] = [];
afterAll(() => Promise.all(written.map((dir) => rm(dir, { recursive: true, force: true }))));

async function packageProd(name: string, extraEnv: Record<string, string>): Promise<Packaged> {
  const dir = await mkdtemp(join(tmpdir(), `paynow-package-${name}-`));
  // Its own temp folder: what serverless leaves there is this run's alone.
  const tmp = await mkdtemp(join(tmpdir(), `paynow-package-tmp-${name}-`));
  written.push(dir, tmp);
  // A clean environment: the suite's own variables (a local SECRET_ID, DYNAMODB_ENDPOINT) must not leak in.
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmpdir(),
    SLS_TELEMETRY_DISABLED: '1',
    ESBUILD_WORK_FOLDER: `.esbuild-test-${name}`,
    TMPDIR: tmp,
    ...README_SETTINGS,
    ...extraEnv,
  };
  await run(
    process.execPath,
    [require.resolve('serverless/bin/serverless.js'), 'package', '--stage', 'prod', '--param', 'alarmEmail=ops@example.com', '--package', dir],
    {
      cwd: ROOT,
      env,
      maxBuffer: 16 * 1024 * 1024,
    },
  ).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`serverless package (${name}) failed:\n${error.stdout}\n${error.stderr}`);
  });
  const files = new Map<string, string>();
  const zipSizes = new Map<string, number>();
  for (const file of await readdir(dir)) {
    if (file.endsWith('.zip')) {
      zipSizes.set(file, (await stat(join(dir, file))).size);
      const { stdout } = await run(
        'python3',
        [
          '-c',
          'import json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({n: z.read(n).decode("utf8", "replace") for n in z.namelist()}))',
          join(dir, file),
        ],
        {
          maxBuffer: 256 * 1024 * 1024,
        },
      );
      for (const [entry, text] of Object.entries(JSON.parse(stdout) as Record<string, string>)) files.set(`${file}!${entry}`, text);
    } else {
      files.set(file, await readFile(join(dir, file), 'utf8'));
    }
  }
  const template = JSON.parse(files.get('cloudformation-template-update-stack.json') as string) as Template;
  return { dir, template, files, zipSizes, leftInTmp: await readdir(tmp) };
}

beforeAll(async () => {
  credentials = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  const { wechat, alipay } = credentials;
  const oldKeyVariables = {
    WECHAT_MERCHANT_SERIAL: wechat.merchant_serial,
    WECHAT_MERCHANT_PRIVATE_KEY: wechat.merchant_private_key_pem,
    WECHAT_MERCHANT_CERT: wechat.merchant_cert_pem,
    WECHAT_APIV3_KEY: wechat.apiv3_key,
    WECHAT_PAY_PUBLIC_KEY_ID: wechat.platform_serial,
    WECHAT_PAY_PUBLIC_KEY: wechat.platform_public_key_pem,
    ALIPAY_APP_PRIVATE_KEY: alipay.app_private_key_pem,
    ALIPAY_PUBLIC_KEY: alipay.alipay_public_key_pem,
  };
  // One after the other: serverless writes each zip into the service's own .serverless/ first.
  plain = await packageProd('plain', {});
  withOldKeys = await packageProd('old-keys', oldKeyVariables);
  // Two packagings: about 80 s on 2 cores beside a mutation run, past 120 s beside the rest of the suite too.
}, 300_000);

const resourcesOf = (template: Template, type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);
const functionsOf = (template: Template) => resourcesOf(template, 'AWS::Lambda::Function');

describe('the packaged prod stack', () => {
  it('runs every function on nodejs24.x', () => {
    expect(functionsOf(plain.template).map(([, f]) => f.Properties.Runtime)).toEqual(Array(FUNCTIONS.length).fill('nodejs24.x'));
  });

  it("keeps every function's environment under Lambda's 4 KB, with no key material in it", () => {
    for (const packaged of [plain, withOldKeys]) {
      for (const [, fn] of functionsOf(packaged.template)) {
        const variables = (fn.Properties.Environment as { Variables: Record<string, string> }).Variables;
        const bytes = Object.entries(variables).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(String(v)), 0);
        expect(bytes).toBeLessThan(4096);
        expect(Object.keys(variables)).not.toEqual(expect.arrayContaining(['WECHAT_APIV3_KEY']));
        expect(variables.SECRET_ID).toBe('paynow/prod');
      }
    }
  });

  it('writes no PEM block, private key or API v3 key anywhere in the package, even with the old key variables set', () => {
    const { wechat, alipay } = credentials;
    const keyBodies = [
      wechat.merchant_private_key_pem,
      wechat.merchant_cert_pem,
      wechat.platform_public_key_pem,
      alipay.app_private_key_pem,
      alipay.alipay_public_key_pem,
    ].map(
      (pem) => pem.split('\n')[3], // a line from the middle of each key's base64
    );
    for (const packaged of [plain, withOldKeys]) {
      expect(packaged.files.size).toBeGreaterThan(FUNCTIONS.length * 3);
      for (const [file, text] of packaged.files) {
        const leaks = [
          /-----BEGIN [A-Z ]+-----\s*[A-Za-z0-9+/=\s\\n]{100,}-----END/.test(text) && 'a PEM block',
          /PRIVATE KEY/.test(text) && !file.includes('!') && 'a private key',
          text.includes(wechat.apiv3_key) && 'the API v3 key',
          ...keyBodies.map((body) => text.includes(body) && 'a key'),
        ].filter(Boolean);
        expect({ file, leaks }).toEqual({ file, leaks: [] });
      }
    }
  });

  it('keeps the table if the stack goes, protects it from deletion, and keeps point-in-time recovery', () => {
    const [[, table]] = resourcesOf(plain.template, 'AWS::DynamoDB::Table');
    expect(table).toMatchObject({
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: { DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } },
    });
  });

  it('warms the table and its index for 1,000 pays a second (docs/capacity.md, "Warm throughput")', () => {
    const [[, table]] = resourcesOf(plain.template, 'AWS::DynamoDB::Table');
    const properties = table.Properties as { WarmThroughput: unknown; GlobalSecondaryIndexes: { WarmThroughput: unknown }[] };
    expect(properties.WarmThroughput).toEqual({ ReadUnitsPerSecond: 15000, WriteUnitsPerSecond: 25000 });
    expect(properties.GlobalSecondaryIndexes.map((index) => index.WarmThroughput)).toEqual([{ ReadUnitsPerSecond: 12000, WriteUnitsPerSecond: 8000 }]);
  });

  it('gives each function a role of its own: no wildcard action, its own log group, the stage secret, the default role gone', () => {
    const functions = functionsOf(plain.template);
    const roles = functions.map(([, fn]) => (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);
    expect(new Set(roles).size).toBe(FUNCTIONS.length);
    expect(plain.template.Resources).not.toHaveProperty('IamRoleLambdaExecution');
    for (const [logicalId, fn] of functions) {
      const role = plain.template.Resources[roles[functions.findIndex(([id]) => id === logicalId)]];
      const statements = (role.Properties.Policies as { PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] } }[]).flatMap(
        (p) => p.PolicyDocument.Statement,
      );
      for (const { Action } of statements) for (const action of Action) expect(action).not.toContain('*');
      const resources = JSON.stringify(statements.map((s) => s.Resource));
      expect(resources).toContain(`log-group:/aws/lambda/${fn.Properties.FunctionName}:*`);
      expect(resources).toContain('secret:paynow/prod-??????');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's own placeholder, not a template literal
      expect(resources).toContain('${AWS::Partition}');
      expect(resources).not.toMatch(/arn:aws:/);
    }
  });

  it("sends a failed sweeper run to an encrypted queue, without pointless retries, and lets only the sweeper's role write to it", () => {
    const configs = resourcesOf(plain.template, 'AWS::Lambda::EventInvokeConfig').map(([, c]) => c.Properties);
    // The event dispatcher is not retried either; a failed run of it alarms through its Errors alarm.
    expect(configs.find((c) => JSON.stringify(c.FunctionName).includes('DispatchEvents'))).toMatchObject({
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    const config = { Properties: configs.find((c) => JSON.stringify(c.FunctionName).includes('Sweeper')) };
    expect(config.Properties).toMatchObject({
      FunctionName: { Ref: 'SweeperLambdaFunction' },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['SweeperFailureQueue', 'Arn'] } } },
    });
    expect(plain.template.Resources.SweeperFailureQueue.Properties).toMatchObject({ SqsManagedSseEnabled: true });
    const writers = Object.entries(plain.template.Resources).filter(
      ([, r]) => r.Type === 'AWS::IAM::Role' && JSON.stringify(r.Properties).includes('sqs:SendMessage'),
    );
    expect(writers.map(([id]) => id)).toEqual(['SweeperExecutionRole']);
  });

  it('schedules each sweep group and each dispatch group every minute with its own `{"group": n}`, one reserved run each', () => {
    const rules = resourcesOf(plain.template, 'AWS::Events::Rule').map(([, rule]) => rule.Properties);
    const groupsOf = (fn: string) =>
      rules
        .filter((rule) => JSON.stringify(rule.Targets).includes(fn))
        .map((rule) => {
          expect(rule.ScheduleExpression).toBe('rate(1 minute)');
          return (JSON.parse((rule.Targets as { Input: string }[])[0].Input) as { group: number }).group;
        })
        .sort((a, b) => a - b);
    expect(groupsOf('SweeperLambdaFunction')).toEqual(Array.from({ length: 64 }, (_, group) => group));
    expect(groupsOf('DispatchEventsLambdaFunction')).toEqual(Array.from({ length: 16 }, (_, group) => group));
    const reserved = (fn: string) => plain.template.Resources[fn].Properties.ReservedConcurrentExecutions;
    expect({ sweeper: reserved('SweeperLambdaFunction'), dispatcher: reserved('DispatchEventsLambdaFunction') }).toEqual({ sweeper: 64, dispatcher: 16 });
  });

  it("lets EventBridge invoke each scheduled function through one permission on its rules' names (64 statements would pass Lambda's 20 KB policy)", () => {
    const permissions = resourcesOf(plain.template, 'AWS::Lambda::Permission').filter(([, p]) => p.Properties.Principal === 'events.amazonaws.com');
    expect(permissions.map(([id]) => id).sort()).toEqual(['DispatchEventsLambdaPermissionSchedules', 'SweeperLambdaPermissionSchedules']);
    const rules = resourcesOf(plain.template, 'AWS::Events::Rule').map(([, rule]) => rule.Properties);
    for (const [fn, prefix] of [
      ['Sweeper', 'paynow-prod-sweeper-'],
      ['DispatchEvents', 'paynow-prod-dispatchEvents-'],
    ] as const) {
      expect(plain.template.Resources[`${fn}LambdaPermissionSchedules`].Properties).toMatchObject({
        SourceAccount: { Ref: 'AWS::AccountId' },
        SourceArn: { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:rule/${prefix}*` },
      });
      const own = rules.filter((rule) => JSON.stringify(rule.Targets).includes(`${fn}LambdaFunction`));
      expect(own.map((rule) => rule.Name).sort()).toEqual(own.map((_, group) => `${prefix}${group}`).sort());
    }
  });

  it('routes the refund notifications and gives refundOrder and shopCommand no route: only an IAM principal can invoke them', () => {
    const routes = resourcesOf(plain.template, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties.RouteKey as string);
    expect(routes.sort()).toEqual(['GET /order/pay/status', 'POST /notify/alipay', 'POST /notify/wechat', 'POST /notify/wechat/refund', 'POST /order/pay']);
    const invokers = resourcesOf(plain.template, 'AWS::Lambda::Permission').map(([, permission]) => JSON.stringify(permission.Properties.FunctionName));
    expect(invokers.some((fn) => fn.includes('RefundOrder') || fn.includes('ShopCommand'))).toBe(false);
  });

  it('keeps prod logs 365 days (six months is up to 184), in JSON, with API access logs and throttling on every route', () => {
    for (const [, group] of resourcesOf(plain.template, 'AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays).toBe(365);
    for (const [, fn] of functionsOf(plain.template)) expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON' });
    expect(plain.template.Resources.HttpApiStage.Properties).toMatchObject({
      AccessLogSettings: { DestinationArn: expect.anything() },
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
  });

  it('alarms to one topic, with its e-mail subscription, on exactly the dimensions each metric is published with', () => {
    const alarms = resourcesOf(plain.template, 'AWS::CloudWatch::Alarm').map(([id, alarm]) => [id, alarm.Properties] as const);
    expect(alarms.map(([id]) => id).sort()).toEqual(
      [
        // No RefundRequired: refund cases are refunded automatically by default (test/infra/alarms.test.ts).
        'RefundFailed',
        'RefundAbnormal',
        'PaymentUnknown',
        'RefundNotificationUnknown',
        'SweeperNotRunning',
        'RefundOverdue',
        'RefundContradicted',
        'PaymentAmountMismatch',
        'PaymentConflict',
        'NotificationMerchantMismatch',
        'NotificationRefusalSpike',
        'SweepAttemptFailures',
        'SweepBehind',
        'EventEndpointFailing',
        'EventDeliveryDead',
        'SecretRefreshFailed',
        'SweeperFailureQueue',
        'Api5xx',
        'WechatGatewayErrorRate',
        'AlipayGatewayErrorRate',
        ...FUNCTIONS.flatMap((fn) => [`${fn[0].toUpperCase()}${fn.slice(1)}Errors`, `${fn[0].toUpperCase()}${fn.slice(1)}Throttles`]),
      ]
        .map((id) => `${id}Alarm`)
        .sort(),
    );
    expect(plain.template.Resources.AlarmEmailSubscription.Properties).toMatchObject({
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: 'AlarmTopic' },
    });
    let paynowMetrics = 0;
    for (const [id, alarm] of alarms) {
      // Missing data breaches only for the sweeper's heartbeat: a quiet shop is no incident, a sweeper that stopped is.
      const missing = id === 'SweeperNotRunningAlarm' ? 'breaching' : 'notBreaching';
      expect({ id, actions: alarm.AlarmActions, missing: alarm.TreatMissingData }).toEqual({ id, actions: [{ Ref: 'AlarmTopic' }], missing });
      const metrics = [
        alarm,
        ...((alarm.Metrics as { MetricStat?: { Metric: Record<string, unknown> } }[] | undefined) ?? []).flatMap((m) =>
          m.MetricStat ? [m.MetricStat.Metric] : [],
        ),
      ];
      for (const metric of metrics.filter((m) => m.Namespace === 'Paynow')) {
        paynowMetrics++;
        const dimensions = metric.Dimensions as { Name: string; Value: string }[];
        expect(dimensions.find((d) => d.Name === 'service')?.Value).toBe('paynow-prod');
        const names = dimensions
          .map((d) => d.Name)
          .filter((n) => n !== 'service')
          .sort();
        const catalogued = METRIC_CATALOGUE[metric.MetricName as MetricName];
        const published = catalogued?.dimensionSets.map((set) => [...set].sort());
        expect({ id, names, published: published?.some((set) => JSON.stringify(set) === JSON.stringify(names)) }).toEqual({ id, names, published: true });
        // And every value is one the code publishes: an alarm on a value never sent would never fire.
        for (const { Name, Value } of dimensions.filter((d) => d.Name !== 'service')) {
          const values = (catalogued.values as Record<string, readonly string[]>)[Name];
          expect({ id, Name, Value, known: values?.includes(Value) }).toEqual({ id, Name, Value, known: true });
        }
      }
    }
    expect(paynowMetrics).toBe(19);
    // The heartbeat: fewer than one invocation in two 5-minute periods of a function its schedules run every minute.
    expect(plain.template.Resources.SweeperNotRunningAlarm.Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: 'paynow-prod-sweeper' }],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
    });
  });

  it('fails the cold start of a function whose stage secret is missing, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'paynow-cold-'));
    written.push(dir);
    await run('python3', ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', join(plain.dir, 'payOrder.zip'), dir]);
    const entry = join(dir, 'functions', 'payOrder', 'lambda.mjs');
    const env = {
      PATH: process.env.PATH ?? '',
      TABLE_NAME: 'paynow-prod',
      SECRET_ID: 'file:/nonexistent/secret.json',
      NOTIFY_BASE_URL: 'https://pay.example.com',
      WECHAT_APPID: 'wx1',
      WECHAT_MCHID: '1',
      ALIPAY_APP_ID: '2',
      ALIPAY_SELLER_ID: '3',
      AWS_REGION: 'ap-east-1',
    };
    const started = await run(
      process.execPath,
      // As Lambda runs it: no --enable-source-maps (lib/sourceMappedStack.ts maps the stack instead).
      ['--input-type=module', '-e', `await import(${JSON.stringify(entry)}); console.log('started')`],
      { env },
    ).then(
      () => 'started',
      (error: { stderr: string }) => error.stderr,
    );
    // The stack is mapped to the TypeScript source (the bundle ships its source maps).
    expect(started).toMatch(
      /SecretError\]?: secret file \/nonexistent\/secret.json cannot be read: ENOENT\n\s+at .*\(lib\/secrets\/secretSources.ts:\d+:\d+\)/,
    );
  });

  it("leaves none of serverless-esbuild's zip staging folders (one per function, about 3 MB each) in the temp folder", () => {
    expect(plain.leftInTmp).toEqual([]);
    expect(withOldKeys.leftInTmp).toEqual([]);
  });

  it('zips each function with only its own entry and the chunks it can reach, within its size budget', () => {
    for (const fn of FUNCTIONS) {
      const zip = `${fn}.zip`;
      const entries = [...plain.files.keys()].filter((f) => f.startsWith(`${zip}!`)).map((f) => f.slice(zip.length + 1));
      expect(entries.every((e) => e.startsWith(`functions/${fn}/`))).toBe(true);
      const js = new Map(entries.filter((e) => e.endsWith('.mjs')).map((e) => [e.split('/').pop() as string, plain.files.get(`${zip}!${e}`) as string]));
      const reach = (dynamic: boolean) => {
        const seen = new Set<string>();
        const visit = (file: string) => {
          if (seen.has(file)) return;
          seen.add(file);
          const text = js.get(file) ?? '';
          const pattern = dynamic ? /(?:from|import|import\()\s*"\.\/([\w-]+\.mjs)"/g : /(?:from|import)\s*"\.\/([\w-]+\.mjs)"/g;
          for (const [, next] of text.matchAll(pattern)) visit(next);
        };
        visit('lambda.mjs');
        return seen;
      };
      const all = reach(true);
      expect({ fn, unreachable: [...js.keys()].filter((f) => !all.has(f)) }).toEqual({ fn, unreachable: [] });
      const bytes = (files: Iterable<string>) => [...files].reduce((sum, f) => sum + Buffer.byteLength(js.get(f) ?? ''), 0);
      const sizes = { zip: plain.zipSizes.get(zip) as number, allJs: bytes(js.keys()), eagerJs: bytes(reach(false)) };
      for (const key of Object.keys(BUDGET) as (keyof typeof BUDGET)[])
        expect({ fn, key, within: sizes[key] <= BUDGET[key], size: sizes[key] }).toMatchObject({ fn, key, within: true });
      expect([...js.values()].join('\n')).not.toMatch(/dynalite|leveldown|scripts\/sandbox/);
    }
  });
});
