import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { TradeCloseRefused } from '../../lib/gateways/paymentGateway';
import type { SecretUse } from '../../lib/secrets/stageNeeds';
import { sandboxStageSecret } from '../../scripts/local/environment';
import { randomAlphanumeric } from '../../scripts/sandbox/credentials';
import { buildWechatPaymentNotification } from '../../scripts/sandbox/notifications';
import { captureOutput, metricLines } from '../support/logs';
import { startTestStack, type TestStack } from '../support/stack';
import { givenUser, pay } from '../support/world';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => stack.close());

/** An app whose stage secret the test controls, on a clock it moves; `env` adds settings, `uses` those whose keys the function uses. */
function appWithSecret(initial: object, env: Record<string, string> = {}, uses: SecretUse[] = []) {
  let text = JSON.stringify(initial);
  let now = Date.now();
  let fetches = 0;
  const app = createApp(loadConfig({ ...stack.env, SECRET_MAX_AGE_SECONDS: '300', ...env }), {
    fetchSecret: async () => {
      fetches++;
      return text;
    },
    now: () => new Date(now),
    uses,
  });
  return {
    app,
    rotate: (document: object) => (text = JSON.stringify(document)),
    advance: (ms: number) => (now += ms),
    /** WeChat signs with its own clock: a notification sent at the app's current time. */
    timestamp: () => Math.floor(now / 1000),
    fetches: () => fetches,
  };
}

const headersOf = (n: { headers: Record<string, string> }) => Object.fromEntries(Object.entries(n.headers).map(([k, v]) => [k.toLowerCase(), v]));
/** A genuine notification of ours that records nothing: a trade not paid yet. */
const notPaid = (outTradeNo: string) => ({
  appid: stack.credentials.wechat.appid,
  mchid: stack.credentials.wechat.mchid,
  out_trade_no: outTradeNo,
  trade_state: 'NOTPAY',
});

describe('the stage secret in a running app', () => {
  it('is read once while the function starts, then from memory', async () => {
    const { app, fetches } = appWithSecret(sandboxStageSecret(stack.credentials));
    await app.ready();
    await app.ready();
    expect(fetches()).toBe(1);
  });

  it('takes a rotated API v3 key within SECRET_MAX_AGE_SECONDS, without a redeploy', async () => {
    const document = sandboxStageSecret(stack.credentials);
    const { app, rotate, advance, timestamp } = appWithSecret(document);
    const rotatedKey = randomAlphanumeric(32);
    const open = () => {
      const notification = buildWechatPaymentNotification({ ...stack.credentials.wechat, apiv3_key: rotatedKey }, notPaid('1T1'), { timestamp: timestamp() });
      return app.notifications.wechat.open({ headers: headersOf(notification), rawBody: notification.body });
    };
    expect(await open()).toEqual({ kind: 'refused', reason: 'undecryptable' });

    rotate({ ...document, wechat: { ...document.wechat, apiv3_key: rotatedKey } });
    advance(299_000);
    expect(await open()).toEqual({ kind: 'refused', reason: 'undecryptable' });
    advance(1_000);
    expect(await open()).toEqual({ kind: 'ignored', outTradeNo: '1T1' });
  });

  it('keeps the keys in use, with an error log and a metric, when the rotated version is malformed', async () => {
    const document = sandboxStageSecret(stack.credentials);
    const { app, rotate, advance, timestamp } = appWithSecret(document);
    await app.ready();
    rotate({ ...document, wechat: { ...document.wechat, apiv3_key: 'not-32-characters-secret' } });
    advance(300_000);
    const { lines, text } = await captureOutput(() => app.ready());
    expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'stage secret refresh failed; the keys in use stay' }));
    expect(text).toContain('wechat.apiv3_key: must be 32 characters');
    expect(text).not.toContain('not-32-characters-secret');
    expect(metricLines(lines, 'SecretRefreshFailed')).toHaveLength(1);
    const notification = buildWechatPaymentNotification(stack.credentials.wechat, notPaid('1T2'), { timestamp: timestamp() });
    expect(await app.notifications.wechat.open({ headers: headersOf(notification), rawBody: notification.body })).toEqual({
      kind: 'ignored',
      outTradeNo: '1T2',
    });
  });

  it('fails every request naming the field while no good secret was ever read, and recovers once it is fixed', async () => {
    const document = sandboxStageSecret(stack.credentials);
    const { app, rotate, advance, fetches } = appWithSecret({ ...document, alipay: { ...document.alipay, alipay_public_key: undefined } });
    await expect(app.ready()).rejects.toThrow(/alipay\.alipay_public_key: is required/);
    rotate(document);
    // Within a second the same error is answered without asking Secrets Manager again.
    await expect(app.ready()).rejects.toThrow(/alipay\.alipay_public_key: is required/);
    expect(fetches()).toBe(1);
    advance(1_000);
    await expect(app.ready()).resolves.toBeUndefined();
  });
});

describe('app tokens that are JWTs', () => {
  it("verify with the shop's key of the secret version in use: a rotated key takes over at the refresh", async () => {
    const [before, after] = [generateKeyPairSync('ed25519'), generateKeyPairSync('ed25519')];
    const withKey = (key: KeyObject) => ({ ...sandboxStageSecret(stack.credentials), shop: { jwt_public_key: key.export({ type: 'spki', format: 'pem' }) } });
    const { app, rotate, advance, timestamp } = appWithSecret(withKey(before.publicKey), { APP_TOKENS: 'jwt', JWT_ALGORITHM: 'EdDSA' });
    const signedBy = (key: KeyObject) =>
      new SignJWT({ sub: '42' })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setExpirationTime(timestamp() + 3600)
        .sign(key);
    const check = async (key: KeyObject) => app.resolveToken(await signedBy(key), app.now());
    expect(await check(before.privateKey)).toEqual({ userId: 42 });
    expect(await check(after.privateKey)).toBe('invalid');

    rotate(withKey(after.publicKey));
    advance(299_000);
    expect(await check(before.privateKey)).toEqual({ userId: 42 });
    advance(1_000);
    expect(await check(after.privateKey)).toEqual({ userId: 42 });
    expect(await check(before.privateKey)).toBe('invalid');
  });
});

describe("a secret version without what the stage's settings use", () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const withShop = (shop: object) => ({ ...sandboxStageSecret(stack.credentials), shop });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });

  it.each([
    ['no shop section', undefined, 'has no shop.jwt_public_key, which APP_TOKENS=jwt needs'],
    [
      'a key of another type',
      { jwt_public_key: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) },
      'shop.jwt_public_key is not an RSA key of at least 2048 bits, which JWT_ALGORITHM RS256 needs',
    ],
  ])('APP_TOKENS=jwt, a rotation to %s: refused, the tokens still verify with the key in use, and the failure alarms', async (_case, shop, message) => {
    const { app, rotate, advance, timestamp } = appWithSecret(withShop({ jwt_public_key: rsaPem }), { APP_TOKENS: 'jwt', JWT_ALGORITHM: 'RS256' }, [
      'appTokens',
    ]);
    const token = async () =>
      new SignJWT({ sub: '42' })
        .setProtectedHeader({ alg: 'RS256' })
        .setExpirationTime(timestamp() + 3600)
        .sign(rsa.privateKey);
    expect(await app.resolveToken(await token(), app.now())).toEqual({ userId: 42 });
    rotate(shop ? withShop(shop) : sandboxStageSecret(stack.credentials));
    advance(300_000);
    const { lines, result } = await captureOutput(async () => app.resolveToken(await token(), app.now()));
    expect(result).toEqual({ userId: 42 });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'stage secret refresh failed; the keys in use stay',
        error: expect.objectContaining({ message: expect.stringContaining(message) }),
      }),
    );
    expect(metricLines(lines, 'SecretRefreshFailed')).toHaveLength(1);
  });

  it('APP_TOKENS=jwt, a cold start on a secret without the key: fails naming the field, in a function that verifies tokens only', async () => {
    const jwtStage = { APP_TOKENS: 'jwt', JWT_ALGORITHM: 'RS256' };
    const { app } = appWithSecret(sandboxStageSecret(stack.credentials), jwtStage, ['appTokens']);
    await expect(app.ready()).rejects.toThrow('has no shop.jwt_public_key, which APP_TOKENS=jwt needs');
    // A notification function of the same stage starts, and records what WeChat tells it.
    const notifications = appWithSecret(sandboxStageSecret(stack.credentials), jwtStage);
    await expect(notifications.app.ready()).resolves.toBeUndefined();
    const notification = buildWechatPaymentNotification(stack.credentials.wechat, notPaid('1T3'), { timestamp: notifications.timestamp() });
    expect(await notifications.app.notifications.wechat.open({ headers: headersOf(notification), rawBody: notification.body })).toEqual({
      kind: 'ignored',
      outTradeNo: '1T3',
    });
  });

  it('SHOP_WEBHOOK_URL set, a rotation that drops shop.webhook_secret: refused, the events still signed with the secret in use', async () => {
    const webhookSecret = randomAlphanumeric(40);
    const { app, rotate, advance } = appWithSecret(withShop({ webhook_secret: webhookSecret }), { SHOP_WEBHOOK_URL: 'https://shop.example.com/paynow' }, [
      'events',
    ]);
    expect(await app.shopSecret()).toMatchObject({ webhookSecret });
    rotate(withShop({}));
    advance(300_000);
    const { lines, result } = await captureOutput(() => app.shopSecret());
    expect(result).toMatchObject({ webhookSecret });
    expect(lines).toContainEqual(
      expect.objectContaining({
        message: 'stage secret refresh failed; the keys in use stay',
        error: expect.objectContaining({ message: expect.stringContaining('has no shop.webhook_secret, which SHOP_WEBHOOK_URL needs') }),
      }),
    );
  });

  it('is taken by a function that uses neither: a rotated API v3 key reaches the notifications although the JWT key is gone', async () => {
    const document = withShop({ jwt_public_key: rsaPem });
    const { app, rotate, advance, timestamp } = appWithSecret(document, { APP_TOKENS: 'jwt', JWT_ALGORITHM: 'RS256' });
    await app.ready();
    const rotatedKey = randomAlphanumeric(32);
    const base = sandboxStageSecret(stack.credentials);
    rotate({ ...base, wechat: { ...base.wechat, apiv3_key: rotatedKey } });
    advance(300_000);
    const notification = buildWechatPaymentNotification({ ...stack.credentials.wechat, apiv3_key: rotatedKey }, notPaid('1T4'), { timestamp: timestamp() });
    expect(await app.notifications.wechat.open({ headers: headersOf(notification), rawBody: notification.body })).toEqual({
      kind: 'ignored',
      outTradeNo: '1T4',
    });
  });

  it('takes a version without either when the settings use neither', async () => {
    const { app, rotate, advance } = appWithSecret(withShop({ webhook_secret: randomAlphanumeric(40), jwt_public_key: rsaPem }));
    await app.ready();
    rotate(withShop({}));
    advance(300_000);
    expect(await app.shopSecret()).toEqual({});
  });
});

describe('gateway calls', () => {
  it('an Alipay close refused for a trade closed already (ACQ.TRADE_STATUS_ERROR) is a call, not an error: abandoned checkouts end so', async () => {
    const user = await givenUser(stack, 0);
    const result = await pay(stack, user, { method: 2 });
    if (result.outcome === 'pay_param') stack.gateway.registerAlipayOrder(String(result.payParam));
    await stack.app.gateways.alipay.closeTrade(result.outTradeNo);
    const { lines } = await captureOutput(async () => {
      await expect(stack.app.gateways.alipay.closeTrade(result.outTradeNo)).rejects.toBeInstanceOf(TradeCloseRefused);
    });
    expect(metricLines(lines, 'GatewayCall')).toEqual([expect.objectContaining({ channel: 'alipay', operation: 'close', GatewayCall: 1 })]);
    expect(metricLines(lines, 'GatewayError')).toEqual([]);
  });

  it('are counted and timed by channel and operation; a failed one is counted as an error', async () => {
    const { lines } = await captureOutput(async () => {
      await stack.app.gateways.wechat.queryTrade('1T404');
      stack.gateway.failNext('wechat.query');
      await expect(stack.app.gateways.wechat.queryTrade('1T404')).rejects.toThrow('wechat query failed: HTTP 500');
    });
    expect(metricLines(lines, 'GatewayCall')).toEqual([
      expect.objectContaining({ channel: 'wechat', operation: 'query', GatewayCall: 1 }),
      expect.objectContaining({ channel: 'wechat', operation: 'query', GatewayCall: 1 }),
    ]);
    expect(metricLines(lines, 'GatewayError')).toEqual([expect.objectContaining({ channel: 'wechat', operation: 'query', GatewayError: 1 })]);
    expect(metricLines(lines, 'GatewayLatency')).toHaveLength(2);
    // The error rate alarm reads the per-channel set.
    expect((metricLines(lines, 'GatewayError')[0]._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions).toEqual([
      ['service', 'channel', 'operation'],
      ['service', 'channel'],
    ]);
  });
});
