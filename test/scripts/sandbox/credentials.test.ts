import { createPrivateKey, createPublicKey, createSign, createVerify, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WxPay from 'wechatpay-node-v3';
import {
  generateSandboxCredentials,
  loadOrCreateSandboxCredentials,
  SANDBOX_CREDENTIALS_FILE,
  type SandboxCredentials,
} from '../../../scripts/sandbox/credentials';

function keysMatch(privatePem: string, publicPem: string): boolean {
  const signature = createSign('RSA-SHA256').update('probe').sign(privatePem);
  return createVerify('RSA-SHA256').update('probe').verify(publicPem, signature);
}

describe('generateSandboxCredentials', () => {
  let creds: SandboxCredentials;
  beforeAll(async () => {
    creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:4010/' });
  });

  it('has exactly the agreed keys', () => {
    expect(Object.keys(creds).sort()).toEqual(['alipay', 'wechat']);
    expect(Object.keys(creds.wechat).sort()).toEqual([
      'apiv3_key',
      'appid',
      'gateway_url',
      'mchid',
      'merchant_cert_pem',
      'merchant_private_key_pem',
      'merchant_serial',
      'platform_private_key_pem',
      'platform_public_key_pem',
      'platform_serial',
    ]);
    expect(Object.keys(creds.alipay).sort()).toEqual([
      'alipay_private_key_pem',
      'alipay_public_key_pem',
      'app_id',
      'app_private_key_pem',
      'app_public_key_pem',
      'gateway_url',
      'seller_id',
    ]);
  });

  it('shapes ids like the real ones', () => {
    expect(creds.wechat.appid).toMatch(/^wx[0-9a-f]{16}$/);
    expect(creds.wechat.mchid).toMatch(/^\d{10}$/);
    expect(creds.wechat.apiv3_key).toMatch(/^[\x21-\x7e]{32}$/);
    expect(Buffer.byteLength(creds.wechat.apiv3_key)).toBe(32);
    expect(creds.wechat.merchant_serial).toMatch(/^[0-9A-F]{40}$/);
    expect(creds.wechat.platform_serial).toMatch(/^PUB_KEY_ID_[0-9A-Fa-f]+$/);
    expect(creds.alipay.app_id).toMatch(/^\d{16}$/);
    expect(creds.alipay.seller_id).toMatch(/^2088\d{12}$/);
    expect(creds.wechat.gateway_url).toBe('http://127.0.0.1:4010');
    expect(creds.alipay.gateway_url).toBe('http://127.0.0.1:4010/alipay/gateway.do');
  });

  it('uses RSA-2048 in the formats each party hands out', () => {
    expect(creds.wechat.merchant_private_key_pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(creds.wechat.platform_private_key_pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(creds.wechat.platform_public_key_pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(creds.alipay.app_private_key_pem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(creds.alipay.alipay_private_key_pem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(creds.alipay.app_public_key_pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(creds.alipay.alipay_public_key_pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    for (const pem of [
      creds.wechat.merchant_private_key_pem,
      creds.wechat.platform_private_key_pem,
      creds.alipay.app_private_key_pem,
      creds.alipay.alipay_private_key_pem,
    ]) {
      expect(createPrivateKey(pem).asymmetricKeyDetails?.modulusLength).toBe(2048);
    }
  });

  it('pairs every public key with its private key, and no two pairs are the same', () => {
    expect(keysMatch(creds.wechat.platform_private_key_pem, creds.wechat.platform_public_key_pem)).toBe(true);
    expect(keysMatch(creds.alipay.app_private_key_pem, creds.alipay.app_public_key_pem)).toBe(true);
    expect(keysMatch(creds.alipay.alipay_private_key_pem, creds.alipay.alipay_public_key_pem)).toBe(true);
    expect(keysMatch(creds.alipay.app_private_key_pem, creds.alipay.alipay_public_key_pem)).toBe(false);
    expect(keysMatch(creds.wechat.merchant_private_key_pem, creds.wechat.platform_public_key_pem)).toBe(false);
  });

  it('issues a self-signed merchant certificate for the merchant key, with merchant_serial as its serial', () => {
    const cert = new X509Certificate(creds.wechat.merchant_cert_pem);
    expect(cert.checkPrivateKey(createPrivateKey(creds.wechat.merchant_private_key_pem))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.serialNumber.toUpperCase()).toBe(creds.wechat.merchant_serial);
    expect(cert.subject).toContain(`CN=${creds.wechat.mchid}`);
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(Date.now());
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 4 * 365 * 24 * 3600 * 1000);
  });

  it('is read by wechatpay-node-v3 (through @fidm/x509) as merchant_serial, and sent so in Authorization', async () => {
    const pay = new WxPay({
      appid: creds.wechat.appid,
      mchid: creds.wechat.mchid,
      publicKey: Buffer.from(creds.wechat.merchant_cert_pem),
      privateKey: Buffer.from(creds.wechat.merchant_private_key_pem),
    });
    expect(pay.getSN()).toBe(creds.wechat.merchant_serial.toLowerCase());
    let authorization = '';
    pay.createHttp({
      get: async (_url: string, headers: Record<string, string>) => {
        authorization = headers.Authorization;
        return { status: 404 };
      },
      post: async () => ({ status: 500 }),
      upload: async () => ({ status: 500 }),
    });
    await pay.query({ out_trade_no: 'ORDER_000001' });
    expect(authorization).toMatch(/^WECHATPAY2-SHA256-RSA2048 /);
    const serial = /serial_no="([^"]+)"/.exec(authorization)?.[1];
    expect(serial?.toUpperCase()).toBe(creds.wechat.merchant_serial);
    expect(authorization).toContain(`mchid="${creds.wechat.mchid}"`);
  });

  it('makes a fresh set every time', async () => {
    const other = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:4010' });
    expect(other.wechat.merchant_serial).not.toBe(creds.wechat.merchant_serial);
    expect(other.alipay.app_private_key_pem).not.toBe(creds.alipay.app_private_key_pem);
  });

  it('refuses a gateway URL that is not a URL', async () => {
    await expect(generateSandboxCredentials({ gatewayUrl: 'not a url' })).rejects.toThrow();
  });
});

describe('loadOrCreateSandboxCredentials', () => {
  let dir: string;
  let seed: SandboxCredentials;
  /** An existing file, without paying for key generation in every test. */
  async function seedFile(): Promise<SandboxCredentials> {
    await fs.writeFile(path.join(dir, SANDBOX_CREDENTIALS_FILE), JSON.stringify(seed), { mode: 0o600 });
    return seed;
  }
  beforeAll(async () => {
    seed = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:4010' });
  });
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'paynow-sandbox-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('creates dir/sandbox.json with mode 0600 on first use, then returns the same credentials', async () => {
    const nested = path.join(dir, 'a', 'b');
    const first = await loadOrCreateSandboxCredentials(nested, { gatewayUrl: 'http://127.0.0.1:4010' });
    const file = path.join(nested, SANDBOX_CREDENTIALS_FILE);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(first);
    const second = await loadOrCreateSandboxCredentials(nested, { gatewayUrl: 'http://127.0.0.1:4010' });
    expect(second).toEqual(first);
    expect(await fs.readdir(nested)).toEqual([SANDBOX_CREDENTIALS_FILE]);
  });

  it('keeps the keys but follows a moved gateway URL', async () => {
    const first = await seedFile();
    const moved = await loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:5020' });
    expect(moved.wechat.gateway_url).toBe('http://127.0.0.1:5020');
    expect(moved.alipay.gateway_url).toBe('http://127.0.0.1:5020/alipay/gateway.do');
    expect({ ...moved.wechat, gateway_url: '' }).toEqual({ ...first.wechat, gateway_url: '' });
    expect({ ...moved.alipay, gateway_url: '' }).toEqual({ ...first.alipay, gateway_url: '' });
    const file = path.join(dir, SANDBOX_CREDENTIALS_FILE);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:5020' })).toEqual(moved);
  });

  it('gives two concurrent first callers the same credentials', async () => {
    const [a, b] = await Promise.all([
      loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:4010' }),
      loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:4010' }),
    ]);
    expect(a).toEqual(b);
    expect(await fs.readdir(dir)).toEqual([SANDBOX_CREDENTIALS_FILE]);
  });

  it('tightens a file that was made readable by others', async () => {
    await seedFile();
    const file = path.join(dir, SANDBOX_CREDENTIALS_FILE);
    await fs.chmod(file, 0o644);
    await loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:4010' });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that is not sandbox credentials', async () => {
    await fs.writeFile(path.join(dir, SANDBOX_CREDENTIALS_FILE), JSON.stringify({ wechat: { appid: 'wx1' } }));
    await expect(loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:4010' })).rejects.toThrow(/missing wechat\.mchid/);
  });

  it('loads keys that still work', async () => {
    const creds = await seedFile();
    const again = await loadOrCreateSandboxCredentials(dir, { gatewayUrl: 'http://127.0.0.1:4010' });
    expect(keysMatch(again.alipay.app_private_key_pem, creds.alipay.app_public_key_pem)).toBe(true);
    expect(createPublicKey(again.wechat.merchant_cert_pem).export({ format: 'pem', type: 'spki' })).toBe(
      createPublicKey(createPrivateKey(creds.wechat.merchant_private_key_pem)).export({ format: 'pem', type: 'spki' }),
    );
  });
});
