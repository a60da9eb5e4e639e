import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { parseStageSecret, unknownStageSecretFields } from '../../../lib/secrets/stageSecret';
import { sandboxStageSecret } from '../../../scripts/local/environment';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';

let credentials: SandboxCredentials;
let other: SandboxCredentials;
let document: ReturnType<typeof sandboxStageSecret>;
beforeAll(async () => {
  [credentials, other] = await Promise.all([
    generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' }),
    generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' }),
  ]);
  document = sandboxStageSecret(credentials);
});

/** The document with one field changed (undefined removes it). */
function withField(section: 'wechat' | 'alipay' | 'shop', field: string, value: string | undefined): string {
  const changed = { ...document, [section]: { ...document[section], [field]: value } };
  if (value === undefined) delete (changed[section] as Record<string, string>)[field];
  return JSON.stringify(changed);
}

function failure(json: string): string {
  try {
    parseStageSecret(json, 'secret paynow/test');
  } catch (error) {
    expect((error as Error).name).toBe('SecretError');
    return (error as Error).message;
  }
  throw new Error('expected the secret to be refused');
}

describe('parseStageSecret', () => {
  it('reads the document into key material', () => {
    const secret = parseStageSecret(JSON.stringify(document));
    expect(secret.wechat).toEqual({
      merchantSerial: credentials.wechat.merchant_serial.toUpperCase(),
      merchantPrivateKeyPem: credentials.wechat.merchant_private_key_pem.trim(),
      merchantCertPem: credentials.wechat.merchant_cert_pem.trim(),
      apiV3Key: credentials.wechat.apiv3_key,
      payPublicKeys: [{ id: credentials.wechat.platform_serial, pem: credentials.wechat.platform_public_key_pem.trim() }],
      platformCertificatesPem: '',
    });
    expect(secret.alipay).toEqual({
      appPrivateKeyPem: credentials.alipay.app_private_key_pem.trim(),
      alipayPublicKeyPem: credentials.alipay.alipay_public_key_pem.trim(),
    });
    expect(parseStageSecret(JSON.stringify({ ...document, shop: undefined })).shop).toEqual({});
  });

  it("reads the optional shop section: the webhook secret and the shop's JWT public key", () => {
    const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const webhookSecret = 'w'.repeat(32);
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { webhook_secret: webhookSecret, jwt_public_key: jwtKey } })).shop).toEqual({
      webhookSecret,
      jwtPublicKeyPems: [jwtKey.trim()],
    });
    const escaped = jwtKey.replace(/\n/g, '\\n');
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: escaped } })).shop).toEqual({ jwtPublicKeyPems: [jwtKey.trim()] });
    expect(parseStageSecret(JSON.stringify({ ...document, shop: {} })).shop).toEqual({});
  });

  it('reads the previous webhook key beside the new one while the shop moves to it', () => {
    const [webhookSecret, webhookPreviousSecret] = ['n'.repeat(32), 'o'.repeat(32)];
    expect(
      parseStageSecret(JSON.stringify({ ...document, shop: { webhook_secret: webhookSecret, webhook_previous_secret: webhookPreviousSecret } })).shop,
    ).toEqual({ webhookSecret, webhookPreviousSecret });
    expect(unknownStageSecretFields(JSON.stringify({ ...document, shop: { webhook_previous_secret: 'x' } }))).toEqual([]);
  });

  it('reads two JWT public keys one after the other (a rotation: the old and the new), each of which must be readable', () => {
    const [old, next] = [0, 1].map(() => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString().trim());
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: `${old}\n${next}` } })).shop).toEqual({ jwtPublicKeyPems: [old, next] });
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: `${old}${next}`.replace(/\n/g, '\\n') } })).shop).toEqual({
      jwtPublicKeyPems: [old, next],
    });
    // PKCS#1 (`RSA PUBLIC KEY`) blocks too, alone or beside an SPKI one: none is dropped.
    const pkcs1 = [0, 1].map(() => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'pkcs1', format: 'pem' }).toString().trim());
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: pkcs1.join('\n') } })).shop).toEqual({ jwtPublicKeyPems: pkcs1 });
    expect(parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: `${pkcs1[0]}\n${old}` } })).shop).toEqual({
      jwtPublicKeyPems: [pkcs1[0], old],
    });
    const broken = `${old}\n-----BEGIN PUBLIC KEY-----\nMIIBroken\n-----END PUBLIC KEY-----`;
    expect(() => parseStageSecret(JSON.stringify({ ...document, shop: { jwt_public_key: broken } }))).toThrow(
      'shop.jwt_public_key: is not a readable public key',
    );
  });

  it('accepts PEMs with the newlines written as \\n, as many secret stores hand them out', () => {
    const escaped = withField('wechat', 'merchant_private_key', credentials.wechat.merchant_private_key_pem.replace(/\n/g, '\\n'));
    expect(parseStageSecret(escaped).wechat.merchantPrivateKeyPem).toBe(credentials.wechat.merchant_private_key_pem.trim());
  });

  it("accepts Alipay's keys as the bare base64 its key tool exports, PKCS#1 or PKCS#8", () => {
    const bare = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const pkcs8 = createPrivateKey(credentials.alipay.app_private_key_pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    for (const key of [credentials.alipay.app_private_key_pem, pkcs8]) {
      const secret = parseStageSecret(
        JSON.stringify({ ...document, alipay: { app_private_key: bare(key), alipay_public_key: bare(credentials.alipay.alipay_public_key_pem) } }),
      );
      expect(createPrivateKey(secret.alipay.appPrivateKeyPem).export({ type: 'pkcs1', format: 'pem' })).toEqual(
        createPrivateKey(key).export({ type: 'pkcs1', format: 'pem' }),
      );
      expect(createPublicKey(secret.alipay.alipayPublicKeyPem).export({ type: 'spki', format: 'pem' })).toEqual(credentials.alipay.alipay_public_key_pem);
    }
  });

  it('accepts platform certificates instead of a WeChat Pay public key', () => {
    const json = JSON.stringify({
      ...document,
      wechat: { ...document.wechat, pay_public_key_id: undefined, pay_public_key: undefined, platform_certificates: credentials.wechat.merchant_cert_pem },
    });
    expect(parseStageSecret(json).wechat.platformCertificatesPem).toContain('BEGIN CERTIFICATE');
  });

  it.each([
    ['a missing API v3 key', () => withField('wechat', 'apiv3_key', undefined), 'wechat.apiv3_key: is required'],
    ['a short API v3 key', () => withField('wechat', 'apiv3_key', 'shortsecretvalue'), 'wechat.apiv3_key: must be 32 characters'],
    // 32 characters, 33 bytes: AES-256 would refuse it at the first notification.
    [
      'an API v3 key of 32 characters but not 32 bytes',
      () => withField('wechat', 'apiv3_key', `é${'a'.repeat(31)}`),
      'wechat.apiv3_key: must be letters and digits only',
    ],
    [
      'an unreadable private key',
      () => withField('alipay', 'app_private_key', 'not-a-key-secret-value'),
      'alipay.app_private_key: is not a readable RSA private key',
    ],
    [
      "a serial that is not the certificate's",
      () => withField('wechat', 'merchant_serial', 'ABCDEF0123456789'),
      'wechat.merchant_serial: is not the serial of merchant_certificate',
    ],
    [
      'a public key id without its key',
      () => withField('wechat', 'pay_public_key', undefined),
      'wechat.pay_public_key: pay_public_key_id and pay_public_key go together',
    ],
    [
      'no way to check WeChat signatures',
      () => JSON.stringify({ ...document, wechat: { ...document.wechat, pay_public_key_id: undefined, pay_public_key: undefined } }),
      'wechat.pay_public_key: set pay_public_key_id',
    ],
    ['no Alipay section', () => JSON.stringify({ wechat: document.wechat }), 'alipay: is required'],
    ['a short webhook secret', () => withField('shop', 'webhook_secret', 'short-secret-value'), 'shop.webhook_secret: must be at least 32 characters'],
    [
      'a short previous webhook secret',
      () => JSON.stringify({ ...document, shop: { webhook_secret: 'n'.repeat(32), webhook_previous_secret: 'short-secret-value' } }),
      'shop.webhook_previous_secret: must be at least 32 characters',
    ],
    [
      'a previous webhook secret without the new one',
      () => JSON.stringify({ ...document, shop: { webhook_previous_secret: 'o'.repeat(32) } }),
      'shop.webhook_previous_secret: needs webhook_secret, the new key, beside it',
    ],
    ['an unreadable JWT public key', () => withField('shop', 'jwt_public_key', 'not-a-key-secret-value'), 'shop.jwt_public_key: is not a readable public key'],
    [
      "the shop's private key where its public key belongs",
      () => withField('shop', 'jwt_public_key', credentials.alipay.app_private_key_pem),
      'shop.jwt_public_key: is a private key: only the public key belongs here',
    ],
    ['a shop section that is not an object', () => JSON.stringify({ ...document, shop: 'x' }), 'shop: must be an object'],
  ])('refuses %s, naming the field', (_case, json, expected) => {
    expect(failure(json())).toContain(expected);
  });

  it("refuses a merchant key that is not the certificate's", () => {
    expect(failure(withField('wechat', 'merchant_private_key', other.wechat.merchant_private_key_pem))).toContain(
      'wechat.merchant_private_key: does not belong to merchant_certificate',
    );
  });

  it('never repeats a value, even of a field it refuses or of text that is not JSON', () => {
    const message =
      failure(withField('wechat', 'apiv3_key', 'short-secret-value')) +
      failure(withField('alipay', 'app_private_key', 'not-a-key-secret-value')) +
      failure(withField('shop', 'webhook_secret', 'short-secret-value')) +
      failure(withField('shop', 'jwt_public_key', credentials.alipay.app_private_key_pem));
    expect(message).not.toMatch(/short-secret-value|not-a-key-secret-value|BEGIN/);
    const broken = `{"wechat": {"apiv3_key": "${credentials.wechat.apiv3_key}"`;
    const notJson = failure(broken);
    expect(notJson).toBe('secret paynow/test is not valid JSON');
  });

  it('lists fields it does not know, which the functions ignore and secret:check reports', () => {
    expect(unknownStageSecretFields(withField('wechat', 'apiV3_key', 'x'))).toEqual(['wechat.apiV3_key']);
    expect(unknownStageSecretFields(JSON.stringify({ ...document, shops: {} }))).toEqual(['shops']);
    expect(unknownStageSecretFields(JSON.stringify({ ...document, shop: { jwt_public_key: 'x', webhook_secret: 'x', jwtPublicKey: 'x' } }))).toEqual([
      'shop.jwtPublicKey',
    ]);
    expect(unknownStageSecretFields(JSON.stringify(document))).toEqual([]);
  });
});
