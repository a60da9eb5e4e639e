import { createPublicKey, createVerify, type KeyObject, X509Certificate } from 'node:crypto';

/** The headers WeChat Pay signs its responses and notifications with. */
export interface WechatSignedMessage {
  timestamp: string;
  nonce: string;
  signature: string;
  serial: string;
  body: string;
}

export type WechatVerdict = 'ok' | 'unknown_serial' | 'stale' | 'bad_signature';

const MAX_SKEW_SECONDS = 5 * 60;

/**
 * Verifies WeChat Pay v3 signatures (RSA-SHA256 over `timestamp\nnonce\nbody\n`) against the key
 * the `Wechatpay-Serial` names: a WeChat Pay public key (`PUB_KEY_ID_...`) or a platform
 * certificate. Several keys may be configured at once, as during a key rotation.
 */
export class WechatSignatureVerifier {
  private readonly keysBySerial: Map<string, KeyObject>;

  constructor(keys: { serial: string; key: KeyObject }[]) {
    this.keysBySerial = new Map(keys.map(({ serial, key }) => [serial.toUpperCase(), key]));
  }

  /** @param certificatesPem zero or more concatenated platform certificate PEMs */
  static fromPem(publicKeys: { id: string; pem: string }[], certificatesPem = ''): WechatSignatureVerifier {
    const certificates = certificatesPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    return new WechatSignatureVerifier([
      ...publicKeys.map(({ id, pem }) => ({ serial: id, key: createPublicKey(pem) })),
      ...certificates.map((pem) => {
        const certificate = new X509Certificate(pem);
        return { serial: certificate.serialNumber, key: certificate.publicKey };
      }),
    ]);
  }

  verify(message: WechatSignedMessage, nowMs: number): WechatVerdict {
    const key = this.keysBySerial.get(message.serial.toUpperCase());
    if (!key) return 'unknown_serial';
    const timestamp = Number(message.timestamp);
    if (!/^\d{1,12}$/.test(message.timestamp) || Math.abs(nowMs / 1000 - timestamp) > MAX_SKEW_SECONDS) return 'stale';
    const signed = `${message.timestamp}\n${message.nonce}\n${message.body}\n`;
    try {
      return createVerify('RSA-SHA256').update(signed, 'utf8').verify(key, message.signature, 'base64') ? 'ok' : 'bad_signature';
    } catch {
      return 'bad_signature';
    }
  }
}
