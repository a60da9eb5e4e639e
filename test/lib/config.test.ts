import { loadConfig } from '../../lib/config';
import { localFunctionEnvironment } from '../../scripts/local/environment';
import { generateSandboxCredentials } from '../../scripts/sandbox/credentials';

let env: Record<string, string>;
beforeAll(async () => {
  const credentials = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  env = localFunctionEnvironment(credentials, {
    tableName: 'paynow-dev',
    dynamodbEndpoint: 'http://127.0.0.1:8000',
    notifyBaseUrl: 'https://pay.example.com/',
    secretFile: '/tmp/secret.json',
  });
});

describe('loadConfig', () => {
  it('reads the environment into typed config with defaults', () => {
    const { DYNAMODB_ENDPOINT: _local, INTEGRAL_FEN_PER_POINT: _f, PAY_TIMEOUT_MINUTES: _p, ...deployed } = env;
    const config = loadConfig({ ...deployed, SECRET_ID: 'paynow/prod' });
    expect(config).toMatchObject({
      tableName: 'paynow-dev',
      secretId: 'paynow/prod',
      secretMaxAgeMs: 300_000,
      fenPerPoint: 1,
      payTimeoutMinutes: 30,
      notifyBaseUrl: 'https://pay.example.com',
    });
    expect(config.dynamodbEndpoint).toBeUndefined();
    expect(config.wechat.gatewayUrl).toBe('http://127.0.0.1:1');
  });

  it('holds no key material: the old key variables are ignored', () => {
    const config = loadConfig({
      ...env,
      WECHAT_APIV3_KEY: 'k'.repeat(32),
      ALIPAY_APP_PRIVATE_KEY: '-----BEGIN RSA PRIVATE KEY-----x-----END RSA PRIVATE KEY-----',
    });
    expect(JSON.stringify(config)).not.toMatch(/PRIVATE KEY|kkkkkkkk/);
  });

  it('reads app tokens as sessions unless APP_TOKENS=jwt, whose algorithm is RS256 unless pinned otherwise', () => {
    expect(loadConfig(env).appTokens).toEqual({ kind: 'session' });
    expect(loadConfig({ ...env, JWT_ISSUER: 'https://shop.example.com' }).appTokens).toEqual({ kind: 'session' });
    expect(loadConfig({ ...env, APP_TOKENS: 'jwt', JWT_ISSUER: '', JWT_AUDIENCE: '' }).appTokens).toEqual({ kind: 'jwt', algorithm: 'RS256' });
    expect(loadConfig({ ...env, APP_TOKENS: 'jwt', JWT_ALGORITHM: 'EdDSA', JWT_ISSUER: 'https://shop.example.com', JWT_AUDIENCE: 'paynow' }).appTokens).toEqual(
      {
        kind: 'jwt',
        algorithm: 'EdDSA',
        issuer: 'https://shop.example.com',
        audience: 'paynow',
      },
    );
  });

  it.each([
    ['APP_TOKENS', 'jwts', 'must be session or jwt'],
    ['JWT_ALGORITHM', 'HS256', 'must be one of RS256, ES256, EdDSA'],
    ['JWT_ALGORITHM', 'none', 'must be one of RS256, ES256, EdDSA'],
  ])('refuses %s=%s', (name, value, message) => {
    expect(() => loadConfig({ ...env, APP_TOKENS: 'jwt', [name]: value })).toThrow(`${name}: ${message}`);
  });

  it('names every bad variable and never prints a value', () => {
    const bad = { ...env, SECRET_MAX_AGE_SECONDS: 'soon-ish', INTEGRAL_FEN_PER_POINT: '0', WECHAT_GATEWAY_URL: 'not a url at all' };
    delete (bad as Record<string, string | undefined>).NOTIFY_BASE_URL;
    delete (bad as Record<string, string | undefined>).SECRET_ID;
    let message = '';
    try {
      loadConfig(bad);
    } catch (error) {
      message = (error as Error).message;
      expect((error as Error).name).toBe('ConfigError');
    }
    for (const name of ['SECRET_ID', 'SECRET_MAX_AGE_SECONDS', 'INTEGRAL_FEN_PER_POINT', 'NOTIFY_BASE_URL', 'WECHAT_GATEWAY_URL'])
      expect(message).toContain(name);
    for (const value of ['soon-ish', 'not a url at all']) expect(message).not.toContain(value);
  });
});

it('takes an EventBridge bus by name only: an ARN, which the role could not put on, is refused', () => {
  expect(loadConfig({ ...env, EVENT_BUS_NAME: 'shop-events' }).events).toEqual({ busName: 'shop-events', webhookUrl: undefined });
  expect(() => loadConfig({ ...env, EVENT_BUS_NAME: 'arn:aws:events:ap-east-1:123456789012:event-bus/shop-events' })).toThrow(
    'EVENT_BUS_NAME: must be an EventBridge bus name (not an ARN)',
  );
});

it("takes the shop's webhook over https, or http to this machine only; never with a user or password in it (the environment holds nothing secret)", () => {
  for (const url of ['https://shop.example.com/paynow', 'http://127.0.0.1:3998/paynow/events', 'http://localhost:3998/e', 'http://[::1]:3998/e'])
    expect(loadConfig({ ...env, SHOP_WEBHOOK_URL: url }).events.webhookUrl).toBe(url);
  expect(() => loadConfig({ ...env, SHOP_WEBHOOK_URL: 'http://shop.example.com/paynow' })).toThrow(
    'SHOP_WEBHOOK_URL: must be https (http only to 127.0.0.1 or localhost)',
  );
  expect(() => loadConfig({ ...env, SHOP_WEBHOOK_URL: 'ftp://shop.example.com/paynow' })).toThrow('SHOP_WEBHOOK_URL: must be https');
  expect(() => loadConfig({ ...env, SHOP_WEBHOOK_URL: 'no url at all' })).toThrow(/^invalid configuration: SHOP_WEBHOOK_URL: /);
  for (const url of ['https://shop:s3cret-value@shop.example.com/paynow', 'https://s3cret-value@shop.example.com/paynow']) {
    let message = '';
    try {
      loadConfig({ ...env, SHOP_WEBHOOK_URL: url });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('SHOP_WEBHOOK_URL: must not carry a user or password');
    expect(message).not.toContain('s3cret-value');
  }
});

it("takes DISPATCH_GROUPS from 1 (the default) to the outbox's 16 shards", () => {
  expect(loadConfig(env).dispatch).toEqual({ groups: 1 });
  expect(loadConfig({ ...env, DISPATCH_GROUPS: '16' }).dispatch).toEqual({ groups: 16 });
  expect(() => loadConfig({ ...env, DISPATCH_GROUPS: '17' })).toThrow("DISPATCH_GROUPS: must be at most 16 (the outbox's shards)");
});
