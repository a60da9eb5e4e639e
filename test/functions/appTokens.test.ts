import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { SignJWT } from 'jose';
import { sandboxStageSecret } from '../../scripts/local/environment';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { captureOutput } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { givenUser } from '../support/world';

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

const shop = generateKeyPairSync('rsa', { modulusLength: 2048 });
const JWT_ENV = { APP_TOKENS: 'jwt', JWT_ALGORITHM: 'RS256', JWT_ISSUER: 'https://shop.example.com', JWT_AUDIENCE: 'paynow' };

let stack: TestStack;
let state: ReturnType<typeof tableState>;
let withKey: Handler;
let withoutKey: Handler;
const secretDirs: string[] = [];

/** A function freshly started (its own modules) with APP_TOKENS=jwt and a stage secret that has `shop` as given. */
async function coldStartOf(fn: string, shopSection: object): Promise<{ handler: Handler; app: { ready(): Promise<void> } }> {
  const dir = await mkdtemp(join(tmpdir(), 'paynow-jwt-secret-'));
  secretDirs.push(dir);
  const file = join(dir, 'secret.json');
  await writeFile(file, JSON.stringify({ ...sandboxStageSecret(stack.credentials), shop: shopSection }));
  Object.assign(process.env, stack.env, JWT_ENV, { SECRET_ID: `file:${file}` });
  let started: { handler: Handler; app: { ready(): Promise<void> } } | undefined;
  jest.isolateModules(() => {
    started = require(`../../functions/${fn}/handler`) as typeof started;
  });
  return started as NonNullable<typeof started>;
}
const coldStart = async (shopSection: object) => (await coldStartOf('payOrder', shopSection)).handler;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  withKey = await coldStart({ jwt_public_key: shop.publicKey.export({ type: 'spki', format: 'pem' }) });
  withoutKey = await coldStart({});
});
afterAll(async () => {
  for (const name of Object.keys(JWT_ENV)) delete process.env[name];
  await expectBalancedBooksThenClose(
    stack,
    () => state.close(),
    () => Promise.all(secretDirs.map((dir) => rm(dir, { recursive: true, force: true }))),
  );
});

/** A token as the shop's login would issue it: `sub` the user id, valid for an hour. */
function tokenFor(userId: number, expiresInSeconds = 3600): Promise<string> {
  return new SignJWT({ sub: String(userId) })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer('https://shop.example.com')
    .setAudience('paynow')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(shop.privateKey);
}

async function payWith(handler: Handler, token: string, order: { orderId: number; addressId: number }) {
  const body = { order_id: order.orderId, pay_method: 1, pay_price: '88.00', pay_integral: 0, address_id: order.addressId, freight_mode: 1 };
  const response = await handler(
    httpEvent({ path: '/order/pay', headers: { token, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    lambdaContext,
  );
  return { statusCode: response.statusCode, body: JSON.parse(response.body as string) };
}

describe('POST /order/pay with APP_TOKENS=jwt', () => {
  it("pays for the user the shop's JWT names, and only that user's orders", async () => {
    const user = await givenUser(stack, 0);
    const other = await givenUser(stack, 0);
    expect(await payWith(withKey, await tokenFor(other.userId), user)).toMatchObject({ body: { status: 0, code: 'ORDER_NOT_FOUND' } });
    const reply = await payWith(withKey, await tokenFor(user.userId), user);
    expect(reply).toMatchObject({ statusCode: 200, body: { status: 200, msg: '下单成功', data: { pay_param: { package: 'Sign=WXPay' } } } });
    expect(await stack.app.store.getOrder(user.orderId)).toMatchObject({ status: 'paying', userId: user.userId });
  });

  it('answers token过期 for an expired JWT, and refuses a stored session token, changing nothing', async () => {
    const user = await givenUser(stack, 0);
    const before = await state.snapshot();
    expect(await payWith(withKey, await tokenFor(user.userId, -60), user)).toMatchObject({
      statusCode: 200,
      body: { status: 0, msg: 'token过期', code: 'TOKEN_EXPIRED' },
    });
    // givenUser also stored a session for this token: sessions do not count in jwt mode.
    expect(await payWith(withKey, user.token, user)).toMatchObject({ body: { status: 0, code: 'TOKEN_INVALID' } });
    expect(await state.snapshot()).toEqual(before);
  });

  it('fails the cold start of the functions that verify tokens only, when the secret has no key: the notifications and the sweeper start', async () => {
    for (const fn of ['payOrder', 'payStatus']) {
      await expect((await coldStartOf(fn, {})).app.ready()).rejects.toThrow('has no shop.jwt_public_key, which APP_TOKENS=jwt needs');
    }
    for (const fn of ['notifyWechat', 'notifyAlipay', 'notifyWechatRefund', 'sweeper', 'refundOrder', 'shopCommand', 'dispatchEvents']) {
      await expect((await coldStartOf(fn, {})).app.ready()).resolves.toBeUndefined();
    }
  });

  it("is a fault of ours, logged naming shop.jwt_public_key, when the secret has no key: never the user's", async () => {
    const user = await givenUser(stack, 0);
    const before = await state.snapshot();
    const { result, lines } = await captureOutput(async () => payWith(withoutKey, await tokenFor(user.userId), user));
    expect(result).toMatchObject({ statusCode: 500, body: { status: 0, code: 'INTERNAL_ERROR' } });
    expect(lines.find((line) => line.message === 'request failed')).toMatchObject({
      level: 'ERROR',
      error: { name: 'SecretError', message: expect.stringContaining('has no shop.jwt_public_key, which APP_TOKENS=jwt needs') },
    });
    expect(await state.snapshot()).toEqual(before);
  });
});
