/**
 * Key material for the local payment sandbox: one merchant (WeChat Pay) and one app (Alipay),
 * plus the gateways' own keys, so that both sides of every signature are real.
 *
 * Formats, chosen to match what each party really hands out and what the SDKs accept:
 * - WeChat merchant private key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, like `apiclient_key.pem`).
 * - WeChat merchant certificate: self-signed X.509 v3 PEM whose serial is `merchant_serial`
 *   (40 uppercase hex digits, first byte < 0x80 so the DER integer needs no leading zero byte and
 *   wechatpay-node-v3, which reads it through @fidm/x509, sends the same 40 digits in lower case).
 * - WeChat Pay platform key pair: PKCS#8 private, SPKI public (`-----BEGIN PUBLIC KEY-----`, what the
 *   merchant platform shows for a "WeChat Pay public key"), identified by `platform_serial` = `PUB_KEY_ID_...`.
 * - Alipay private keys: PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), alipay-sdk's default
 *   `keyType`; public keys: SPKI PEM (alipay-sdk re-wraps every public key as `PUBLIC KEY`).
 *
 * @example
 * const creds = await loadOrCreateSandboxCredentials('.sandbox', { gatewayUrl: 'http://127.0.0.1:4010' });
 */

import { createPrivateKey, createSign, generateKeyPair, type KeyObject, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomAlphanumeric, randomDigits } from './randomIds';

// Its importers have always taken it from here.
export { randomAlphanumeric };

export interface SandboxCredentials {
  wechat: {
    appid: string;
    mchid: string;
    apiv3_key: string;
    merchant_private_key_pem: string;
    merchant_cert_pem: string;
    merchant_serial: string;
    platform_private_key_pem: string;
    platform_public_key_pem: string;
    platform_serial: string;
    gateway_url: string;
  };
  alipay: {
    app_id: string;
    seller_id: string;
    app_private_key_pem: string;
    app_public_key_pem: string;
    alipay_private_key_pem: string;
    alipay_public_key_pem: string;
    gateway_url: string;
  };
}

/** The file `loadOrCreateSandboxCredentials` keeps in its directory. */
export const SANDBOX_CREDENTIALS_FILE = 'sandbox.json';

const generateRsaKeyPair = promisify(generateKeyPair);

interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

async function newRsaKeyPair(): Promise<RsaKeyPair> {
  const pair = await generateRsaKeyPair('rsa', { modulusLength: 2048 });
  return { privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** 20 random bytes, first one in 0x01..0x7f: a positive DER INTEGER with no padding byte. */
function newCertificateSerial(): Buffer {
  const serial = randomBytes(20);
  serial[0] = 0x01 + (serial[0] % 0x7f);
  return serial;
}

// ---- minimal DER writer: just enough for one self-signed certificate ----

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

const derSequence = (...parts: Buffer[]): Buffer => der(0x30, Buffer.concat(parts));
const derSet = (...parts: Buffer[]): Buffer => der(0x31, Buffer.concat(parts));
const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
const derUtf8 = (text: string): Buffer => der(0x0c, Buffer.from(text, 'utf8'));
const derPrintable = (text: string): Buffer => der(0x13, Buffer.from(text, 'ascii'));
const derBitString = (bytes: Buffer, unusedBits = 0): Buffer => der(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
const derOctetString = (bytes: Buffer): Buffer => der(0x04, bytes);
const derExplicit = (tagNumber: number, content: Buffer): Buffer => der(0xa0 | tagNumber, content);

function derOid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}

function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  const compact = `${iso.slice(0, 19).replace(/[-:T]/g, '')}Z`; // YYYYMMDDHHmmssZ
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(compact.slice(2), 'ascii')) : der(0x18, Buffer.from(compact, 'ascii'));
}

const OID = {
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  countryName: '2.5.4.6',
  localityName: '2.5.4.7',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  commonName: '2.5.4.3',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
};

function derName(attributes: Array<[oid: string, value: string, printable?: boolean]>): Buffer {
  return derSequence(...attributes.map(([oid, value, printable]) => derSet(derSequence(derOid(oid), printable ? derPrintable(value) : derUtf8(value)))));
}

function toPem(label: string, body: Buffer): string {
  const base64 = body
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

/**
 * A self-signed X.509 v3 certificate shaped like a WeChat Pay merchant API certificate
 * (subject CN = mchid, 5-year validity), with the given serial.
 */
function selfSignedMerchantCertificate(keys: RsaKeyPair, serial: Buffer, mchid: string, now = new Date()): string {
  const signatureAlgorithm = derSequence(derOid(OID.sha256WithRSAEncryption), derNull());
  const name = derName([
    [OID.countryName, 'CN', true],
    [OID.localityName, 'ShenZhen'],
    [OID.organizationName, 'paynow sandbox merchant'],
    [OID.organizationalUnitName, 'paynow sandbox'],
    [OID.commonName, mchid],
  ]);
  const notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
  const notAfter = new Date(now.getTime() + 5 * 365 * 24 * 3600 * 1000);
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const extensions = derExplicit(
    3,
    derSequence(
      derSequence(derOid(OID.basicConstraints), derOctetString(derSequence())),
      // digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment
      derSequence(derOid(OID.keyUsage), der(0x01, Buffer.from([0xff])), derOctetString(derBitString(Buffer.from([0xf0]), 4))),
    ),
  );
  const tbsCertificate = derSequence(
    derExplicit(0, der(0x02, Buffer.from([0x02]))), // version v3
    der(0x02, serial),
    signatureAlgorithm,
    name,
    derSequence(derTime(notBefore), derTime(notAfter)),
    name,
    spki,
    extensions,
  );
  const signature = createSign('sha256').update(tbsCertificate).sign(keys.privateKey);
  return toPem('CERTIFICATE', derSequence(tbsCertificate, signatureAlgorithm, derBitString(signature)));
}

/** Strips a trailing slash so `${gatewayUrl}/path` never doubles it. */
function normaliseGatewayUrl(gatewayUrl: string): string {
  const url = new URL(gatewayUrl); // throws on garbage, early
  return url.toString().replace(/\/+$/, '');
}

/** The Alipay openapi endpoint on a sandbox gateway listening at `gatewayUrl`. */
export function alipayGatewayUrl(gatewayUrl: string): string {
  return `${normaliseGatewayUrl(gatewayUrl)}/alipay/gateway.do`;
}

/**
 * Fresh credentials: four RSA-2048 key pairs, a merchant certificate, ids shaped like real ones.
 *
 * @example
 * const creds = await generateSandboxCredentials({ gatewayUrl: gateway.url });
 */
export async function generateSandboxCredentials(opts: { gatewayUrl: string }): Promise<SandboxCredentials> {
  const gatewayUrl = normaliseGatewayUrl(opts.gatewayUrl);
  const [merchant, platform, app, alipay] = await Promise.all([newRsaKeyPair(), newRsaKeyPair(), newRsaKeyPair(), newRsaKeyPair()]);
  const mchid = `1${randomDigits(9)}`;
  const serial = newCertificateSerial();
  return {
    wechat: {
      appid: `wx${randomBytes(8).toString('hex')}`,
      mchid,
      apiv3_key: randomAlphanumeric(32),
      merchant_private_key_pem: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      merchant_cert_pem: selfSignedMerchantCertificate(merchant, serial, mchid),
      merchant_serial: serial.toString('hex').toUpperCase(),
      platform_private_key_pem: platform.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      platform_public_key_pem: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      platform_serial: `PUB_KEY_ID_01${mchid}${randomDigits(16)}`,
      gateway_url: gatewayUrl,
    },
    alipay: {
      app_id: `2021${randomDigits(12)}`,
      seller_id: `2088${randomDigits(12)}`,
      app_private_key_pem: app.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      app_public_key_pem: app.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      alipay_private_key_pem: alipay.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      alipay_public_key_pem: alipay.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      gateway_url: alipayGatewayUrl(gatewayUrl),
    },
  };
}

const WECHAT_KEYS = [
  'appid',
  'mchid',
  'apiv3_key',
  'merchant_private_key_pem',
  'merchant_cert_pem',
  'merchant_serial',
  'platform_private_key_pem',
  'platform_public_key_pem',
  'platform_serial',
  'gateway_url',
] as const;
const ALIPAY_KEYS = [
  'app_id',
  'seller_id',
  'app_private_key_pem',
  'app_public_key_pem',
  'alipay_private_key_pem',
  'alipay_public_key_pem',
  'gateway_url',
] as const;

function parseCredentials(text: string, file: string): SandboxCredentials {
  const data = JSON.parse(text) as { wechat?: Record<string, unknown>; alipay?: Record<string, unknown> };
  const missing = [
    ...WECHAT_KEYS.filter((key) => typeof data.wechat?.[key] !== 'string').map((key) => `wechat.${key}`),
    ...ALIPAY_KEYS.filter((key) => typeof data.alipay?.[key] !== 'string').map((key) => `alipay.${key}`),
  ];
  if (missing.length > 0) throw new Error(`${file} is not a sandbox credentials file (missing ${missing.join(', ')})`);
  // Fail at load, not at the first signature, if a key was hand-edited into garbage.
  createPrivateKey(data.wechat!.merchant_private_key_pem as string);
  createPrivateKey(data.alipay!.app_private_key_pem as string);
  return data as unknown as SandboxCredentials;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writePrivately(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  await fs.rename(tmp, file);
}

/**
 * Reads `dir/sandbox.json`, or creates it (mode 0600) with fresh credentials on first use, so that
 * the local stack, the simulator and the tests all sign with the same keys across runs.
 * Only `gateway_url` follows `opts.gatewayUrl` when it changed (the sandbox port may move);
 * the keys and ids never change once written.
 *
 * @example
 * const creds = await loadOrCreateSandboxCredentials(path.join(repoRoot, '.sandbox'), { gatewayUrl });
 */
export async function loadOrCreateSandboxCredentials(dir: string, opts: { gatewayUrl: string }): Promise<SandboxCredentials> {
  const file = path.join(dir, SANDBOX_CREDENTIALS_FILE);
  const gatewayUrl = normaliseGatewayUrl(opts.gatewayUrl);
  let text = await readIfExists(file);
  if (text === undefined) {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const fresh = await generateSandboxCredentials({ gatewayUrl });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      // link, not rename: if another process created the file meanwhile, keep theirs.
      await fs.link(tmp, file);
      return fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await fs.unlink(tmp);
    }
    text = await fs.readFile(file, 'utf8');
  }
  const stored = parseCredentials(text, file);
  const stat = await fs.stat(file);
  if ((stat.mode & 0o077) !== 0) await fs.chmod(file, 0o600);
  if (stored.wechat.gateway_url === gatewayUrl && stored.alipay.gateway_url === alipayGatewayUrl(gatewayUrl)) return stored;
  const moved: SandboxCredentials = {
    wechat: { ...stored.wechat, gateway_url: gatewayUrl },
    alipay: { ...stored.alipay, gateway_url: alipayGatewayUrl(gatewayUrl) },
  };
  await writePrivately(file, `${JSON.stringify(moved, null, 2)}\n`);
  return moved;
}
