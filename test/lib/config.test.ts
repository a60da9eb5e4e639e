import { generateSandboxCredentials } from '../../scripts/sandbox/credentials';
import { localFunctionEnvironment } from '../../scripts/local/environment';
import { loadConfig } from '../../lib/config';

let env: Record<string, string>;
beforeAll(async () => {
  const credentials = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  env = localFunctionEnvironment(credentials, { tableName: 'paynow-dev', dynamodbEndpoint: 'http://127.0.0.1:8000', notifyBaseUrl: 'https://pay.example.com/' });
});

describe('loadConfig', () => {
  it('reads the environment into typed config with defaults', () => {
    const { DYNAMODB_ENDPOINT: _local, INTEGRAL_FEN_PER_POINT: _f, PAY_TIMEOUT_MINUTES: _p, ...deployed } = env;
    const config = loadConfig(deployed);
    expect(config).toMatchObject({ tableName: 'paynow-dev', fenPerPoint: 1, payTimeoutMinutes: 30, notifyBaseUrl: 'https://pay.example.com' });
    expect(config.dynamodbEndpoint).toBeUndefined();
    expect(config.wechat.payPublicKeys).toHaveLength(1);
  });

  it('accepts PEMs with escaped newlines, as some secret stores hand them out', () => {
    const config = loadConfig({ ...env, WECHAT_MERCHANT_PRIVATE_KEY: env.WECHAT_MERCHANT_PRIVATE_KEY.replace(/\n/g, '\\n') });
    expect(config.wechat.merchantPrivateKeyPem).toBe(env.WECHAT_MERCHANT_PRIVATE_KEY);
  });

  it('names every bad variable and never prints a value', () => {
    const bad = { ...env, WECHAT_APIV3_KEY: 'short-secret-value', ALIPAY_APP_PRIVATE_KEY: 'not-a-pem-secret', INTEGRAL_FEN_PER_POINT: '0' };
    delete (bad as Record<string, string | undefined>).NOTIFY_BASE_URL;
    let message = '';
    try {
      loadConfig(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of ['WECHAT_APIV3_KEY', 'ALIPAY_APP_PRIVATE_KEY', 'INTEGRAL_FEN_PER_POINT', 'NOTIFY_BASE_URL']) expect(message).toContain(name);
    for (const secret of ['short-secret-value', 'not-a-pem-secret']) expect(message).not.toContain(secret);
  });

  it('needs a way to verify WeChat signatures', () => {
    const { WECHAT_PAY_PUBLIC_KEY_ID: _id, WECHAT_PAY_PUBLIC_KEY: _key, ...none } = env;
    expect(() => loadConfig(none)).toThrow(/WECHAT_PLATFORM_CERTIFICATES/);
    expect(() => loadConfig({ ...none, WECHAT_PAY_PUBLIC_KEY_ID: env.WECHAT_PAY_PUBLIC_KEY_ID })).toThrow(/go together/);
  });
});
