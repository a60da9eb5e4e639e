import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type JWTPayload, SignJWT } from 'jose';
import type { JwtAlgorithm } from '../../../lib/config';
import { apiHandler } from '../../../lib/http/apiHandler';
import type { ResolveToken } from '../../../lib/http/authenticate';
import { CLOCK_TOLERANCE_SECONDS, type JwtTokenOptions, jwtTokens } from '../../../lib/http/jwtTokens';
import { httpEvent, lambdaContext } from '../../../scripts/local/httpEvents';

/** The injected clock of every check: far from the machine's own time, so a test passes only if this one is used. */
const NOW_S = 4_102_444_800; // 2100-01-01T00:00:00Z
const NOW = new Date(NOW_S * 1000);

const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const shop = rsa();
const stranger = rsa();
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token the shop would issue: user 1001, valid for an hour from NOW; `claims` changes or (undefined) removes claims. */
function sign(claims: JWTPayload = {}, options: { key?: KeyObject; alg?: string } = {}): Promise<string> {
  const payload: JWTPayload = { sub: '1001', iat: NOW_S, exp: NOW_S + 3600, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'RS256' }).sign(options.key ?? shop.privateKey);
}

function resolver(options: Partial<JwtTokenOptions> = {}): ResolveToken {
  return jwtTokens({ algorithm: 'RS256', publicKeyPems: [pem(shop.publicKey)], source: 'secret paynow/test', ...options });
}

/** The app's whole answer through the real middlewares (envelope, authenticate) with the clock at `now`. */
async function answer(token: string | undefined, now: Date = NOW) {
  const handler = apiHandler(
    { resolveToken: resolver(), ready: async () => undefined, now: () => now },
    async (_event, context) => ({ msg: 'ok', data: { user_id: context.userId } }),
    { body: false },
  );
  const response = (await handler(
    httpEvent({ method: 'GET', path: '/order/pay/status', headers: token === undefined ? {} : { token } }),
    lambdaContext,
  )) as APIGatewayProxyStructuredResultV2;
  return JSON.parse(response.body as string) as { status: number; msg: string; code?: string; data: unknown };
}

describe('app tokens that are JWTs (APP_TOKENS=jwt)', () => {
  it("lets a token signed with the shop's key in as its `sub`", async () => {
    expect(await answer(await sign())).toEqual({ status: 200, msg: 'ok', data: { user_id: 1001 } });
  });

  it('answers exactly token过期 once `exp` has passed by the injected clock, with the documented tolerance', async () => {
    const token = await sign();
    const at = (seconds: number) => new Date((NOW_S + 3600 + seconds) * 1000);
    expect(CLOCK_TOLERANCE_SECONDS).toBe(5);
    expect(await answer(token, at(CLOCK_TOLERANCE_SECONDS - 1))).toMatchObject({ status: 200, data: { user_id: 1001 } });
    expect(await answer(token, at(CLOCK_TOLERANCE_SECONDS))).toEqual({ status: 0, msg: 'token过期', code: 'TOKEN_EXPIRED', data: [] });
    // The machine's clock (years before NOW) would still let it in: only the injected one decides.
    expect(await answer(await sign({ iat: undefined, exp: NOW_S - 60 }))).toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('answers TOKEN_MISSING without a token and TOKEN_INVALID for text that is no JWT', async () => {
    expect(await answer(undefined)).toMatchObject({ status: 0, code: 'TOKEN_MISSING' });
    for (const token of ['demo-1001', 'a.b.c', `${base64url({ alg: 'RS256' })}.${base64url({ sub: '1001' })}.`])
      expect(await answer(token)).toMatchObject({ status: 0, code: 'TOKEN_INVALID', msg: '登录已失效,请重新登录' });
  });

  it('throws a fault of ours instead of calling the token invalid (here a clock that is no Date, which jose cannot read)', async () => {
    const resolve = resolver();
    const token = await sign();
    await expect(resolve(token, 'not a date' as unknown as Date)).rejects.toThrow(TypeError);
    expect(await resolve(token, NOW)).toEqual({ userId: 1001 });
  });

  it('refuses a token signed by another key, or whose claims were changed after signing', async () => {
    const resolve = resolver();
    expect(await resolve(await sign({}, { key: stranger.privateKey }), NOW)).toBe('invalid');
    const [header, , signature] = (await sign()).split('.');
    const forged = `${header}.${base64url({ sub: '1', exp: NOW_S + 3600 })}.${signature}`;
    expect(await resolve(forged, NOW)).toBe('invalid');
  });

  const claims = { sub: '1001', exp: NOW_S + 3600 };
  const hs256 = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(claims)}`;
  it.each([
    ['`none` (jose refuses it whatever the settings)', async () => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`],
    // The classic confusion: the public key's PEM, which anyone has, used as an HMAC secret.
    ['HS256 keyed with the public key PEM', async () => `${hs256}.${createHmac('sha256', pem(shop.publicKey)).update(hs256).digest('base64url')}`],
    // A genuine signature by the shop's own key, with an algorithm the settings did not choose.
    ['PS256 signed with the right key', () => sign({}, { alg: 'PS256' })],
  ])('accepts only the pinned algorithm: not %s', async (_case, token) => {
    expect(await resolver()(await token(), NOW)).toBe('invalid');
  });

  it.each([
    ['0', '0'],
    ['negative', '-7'],
    ['not a number', 'alice'],
    ['leading zero', '01001'],
    ['exponent', '1e3'],
    ['decimal', '1001.0'],
    ['beyond a safe integer', '9007199254740993'],
    ['a JSON number', 1001],
    ['missing', undefined],
  ])('refuses `sub` %s', async (_case, sub) => {
    expect(await resolver()(await sign({ sub: sub as string }), NOW)).toBe('invalid');
  });

  it('refuses a token without `exp`', async () => {
    expect(await resolver()(await sign({ exp: undefined }), NOW)).toBe('invalid');
  });

  it('checks `iss` and `aud` when JWT_ISSUER and JWT_AUDIENCE are set, and only then', async () => {
    const strict = resolver({ issuer: 'https://shop.example.com', audience: 'paynow' });
    const right = { iss: 'https://shop.example.com', aud: ['paynow', 'points'] };
    expect(await strict(await sign(right), NOW)).toEqual({ userId: 1001 });
    for (const wrong of [{ iss: 'https://evil.example.com' }, { aud: 'points' }, { iss: undefined }, { aud: undefined }])
      expect(await strict(await sign({ ...right, ...wrong }), NOW)).toBe('invalid');
    expect(await resolver()(await sign({ iss: 'anyone', aud: 'anything' }), NOW)).toEqual({ userId: 1001 });
  });

  it.each([
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', generateKeyPairSync('ed25519')],
  ] as const)('verifies %s when it is the pinned algorithm', async (algorithm: JwtAlgorithm, keys) => {
    const resolve = resolver({ algorithm, publicKeyPems: [pem(keys.publicKey)] });
    expect(await resolve(await sign({}, { alg: algorithm, key: keys.privateKey }), NOW)).toEqual({ userId: 1001 });
    expect(await resolve(await sign(), NOW)).toBe('invalid');
  });

  it("while the secret holds the old and the new key (a rotation), lets in a token of either; expired is still expired, a stranger's still invalid", async () => {
    const next = rsa();
    const resolve = resolver({ publicKeyPems: [pem(shop.publicKey), pem(next.publicKey)] });
    expect(await resolve(await sign(), NOW)).toEqual({ userId: 1001 });
    expect(await resolve(await sign({ sub: '1002' }, { key: next.privateKey }), NOW)).toEqual({ userId: 1002 });
    // Each key's own tokens: their claims decide, not the other key's signature.
    expect(await resolve(await sign({ exp: NOW_S - 60 }), NOW)).toBe('expired');
    expect(await resolve(await sign({ exp: NOW_S - 60 }, { key: next.privateKey }), NOW)).toBe('expired');
    expect(await resolve(await sign({ sub: '0' }, { key: next.privateKey }), NOW)).toBe('invalid');
    expect(await resolve(await sign({}, { key: stranger.privateKey }), NOW)).toBe('invalid');
    // Once the old key is gone from the secret, its tokens are refused.
    expect(await resolver({ publicKeyPems: [pem(next.publicKey)] })(await sign(), NOW)).toBe('invalid');
    expect(() => resolver({ publicKeyPems: [pem(shop.publicKey), pem(generateKeyPairSync('ed25519').publicKey)] })).toThrow(
      'shop.jwt_public_key (key 2 of 2) is not an RSA key of at least 2048 bits',
    );
  });

  it('fails on a secret without the key, or with a key that does not fit the algorithm, naming the field and not the key', () => {
    const build = (options: Partial<JwtTokenOptions>) => () => resolver(options);
    expect(build({ publicKeyPems: undefined })).toThrow(
      expect.objectContaining({ name: 'SecretError', message: 'secret paynow/test has no shop.jwt_public_key, which APP_TOKENS=jwt needs' }),
    );
    const cases: [Partial<JwtTokenOptions>, RegExp][] = [
      [{ algorithm: 'ES256' }, /shop\.jwt_public_key is not an EC key on P-256, which JWT_ALGORITHM ES256 needs/],
      [{ algorithm: 'EdDSA' }, /shop\.jwt_public_key is not an Ed25519 key/],
      [{ publicKeyPems: [pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)] }, /not an RSA key of at least 2048 bits/],
      // A DSA key has a 2048-bit modulus too: the type is checked, not only the size.
      [{ publicKeyPems: [pem(generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).publicKey)] }, /not an RSA key of at least 2048 bits/],
      [{ publicKeyPems: [pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)], algorithm: 'ES256' }, /not an EC key on P-256/],
    ];
    for (const [options, message] of cases) {
      expect(build(options)).toThrow(message);
      expect(build(options)).toThrow(expect.objectContaining({ name: 'SecretError', message: expect.not.stringMatching(/BEGIN|MII/) }));
    }
  });
});
