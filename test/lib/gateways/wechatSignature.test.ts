/**
 * The check every WeChat Pay answer and notification passes: RSA-SHA256 over
 * `timestamp\nnonce\nbody\n`, under the key its Wechatpay-Serial names, within 5 minutes.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { WechatSignatureVerifier, type WechatSignedMessage } from '../../../lib/gateways/wechatSignature';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { wechatSignatureHeaders } from '../../../scripts/sandbox/signing';

const NOW_MS = Date.parse('2026-11-28T12:00:00.000Z');
const NOW_SECONDS = NOW_MS / 1000;
const BODY = '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}';

let creds: SandboxCredentials['wechat'];
let verifier: WechatSignatureVerifier;

beforeAll(async () => {
  creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).wechat;
  verifier = WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }]);
});

/** The message as the adapter reads it off a signed answer. */
function message(signing: Parameters<typeof wechatSignatureHeaders>[2] = {}, body = BODY): WechatSignedMessage {
  const headers = wechatSignatureHeaders(creds, body, { timestamp: NOW_SECONDS, ...signing });
  return {
    timestamp: headers['Wechatpay-Timestamp'],
    nonce: headers['Wechatpay-Nonce'],
    signature: headers['Wechatpay-Signature'],
    serial: headers['Wechatpay-Serial'],
    body,
  };
}

it('accepts what the WeChat Pay key signed, under its PUB_KEY_ID in any case', () => {
  expect(verifier.verify(message(), NOW_MS)).toBe('ok');
  expect(verifier.verify({ ...message(), serial: creds.platform_serial.toLowerCase() }, NOW_MS)).toBe('ok');
  expect(verifier.verify(message({}, ''), NOW_MS)).toBe('ok');
});

it('accepts a timestamp up to 5 minutes either side of now, and calls anything further stale', () => {
  expect(verifier.verify(message({ timestamp: NOW_SECONDS - 300 }), NOW_MS)).toBe('ok');
  expect(verifier.verify(message({ timestamp: NOW_SECONDS + 300 }), NOW_MS)).toBe('ok');
  expect(verifier.verify(message({ timestamp: NOW_SECONDS - 301 }), NOW_MS)).toBe('stale');
  expect(verifier.verify(message({ timestamp: NOW_SECONDS + 301 }), NOW_MS)).toBe('stale');
});

it.each(['', '1795e9', ' 1795867200', '-1795867200', '1795867200.5'])('calls a timestamp that is not plain seconds (%j) stale', (timestamp) => {
  expect(verifier.verify({ ...message(), timestamp }, NOW_MS)).toBe('stale');
});

it('refuses a message whose body, nonce or timestamp changed after signing', () => {
  const signed = message();
  expect(verifier.verify({ ...signed, body: BODY.replace('ORDER_NOT_EXIST', 'ORDERPAID') }, NOW_MS)).toBe('bad_signature');
  expect(verifier.verify({ ...signed, nonce: `${signed.nonce}x` }, NOW_MS)).toBe('bad_signature');
  expect(verifier.verify({ ...signed, timestamp: String(NOW_SECONDS + 1) }, NOW_MS)).toBe('bad_signature');
});

it('refuses a serial it has no key for, whatever the signature', () => {
  expect(verifier.verify(message({ serial: 'PUB_KEY_ID_0000000000000000000000000000' }), NOW_MS)).toBe('unknown_serial');
  expect(verifier.verify({ ...message(), serial: '' }, NOW_MS)).toBe('unknown_serial');
});

it('checks each serial against its own key: platform certificates beside the public key, as during a rotation', () => {
  // A second key pair, published as a platform certificate (the sandbox merchant certificate stands in for one).
  const other = { key: creds.merchant_private_key_pem, serial: new X509Certificate(creds.merchant_cert_pem).serialNumber };
  const both = WechatSignatureVerifier.fromPem([{ id: creds.platform_serial, pem: creds.platform_public_key_pem }], `${creds.merchant_cert_pem}\n`);
  expect(both.verify(message(), NOW_MS)).toBe('ok');
  expect(both.verify(message({ serial: other.serial, signWithKeyPem: other.key }), NOW_MS)).toBe('ok');
  expect(both.verify(message({ serial: other.serial }), NOW_MS)).toBe('bad_signature');
  expect(both.verify(message({ signWithKeyPem: other.key }), NOW_MS)).toBe('bad_signature');
});

it('a signature that cannot be checked with the key at all is bad_signature, not a crash', () => {
  const ed25519 = generateKeyPairSync('ed25519').publicKey;
  const odd = new WechatSignatureVerifier([{ serial: creds.platform_serial, key: ed25519 }]);
  expect(odd.verify(message(), NOW_MS)).toBe('bad_signature');
  expect(verifier.verify({ ...message(), signature: '' }, NOW_MS)).toBe('bad_signature');
});
