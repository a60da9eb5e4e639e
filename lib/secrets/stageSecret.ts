import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import * as v from 'valibot';
import { PaynowError } from '../domain/errors';

/**
 * The merchant's key material for one stage: everything that would let someone take money or
 * forge a payment. It lives in one AWS Secrets Manager secret per stage (a JSON document, see the
 * README), never in the template or a function's environment.
 */
export interface StageSecret {
  wechat: {
    /** Serial of the merchant API certificate; it rotates with the key, so it lives beside it. */
    merchantSerial: string;
    merchantPrivateKeyPem: string;
    merchantCertPem: string;
    apiV3Key: string;
    /** WeChat Pay public keys by id (`PUB_KEY_ID_...`). */
    payPublicKeys: { id: string; pem: string }[];
    /** Platform certificates, concatenated PEM; the serial is read from each. */
    platformCertificatesPem: string;
  };
  alipay: {
    appPrivateKeyPem: string;
    alipayPublicKeyPem: string;
  };
  /** What paynow shares with the shop; the section and its fields are optional. */
  shop: {
    /** The key the webhooks to the shop are signed with (HMAC-SHA256). */
    webhookSecret?: string;
    /** While the shop moves to a new webhook key: the old one, each delivery signed with both. */
    webhookPreviousSecret?: string;
    /** The shop's public keys for app tokens that are JWTs (APP_TOKENS=jwt): one, or during a rotation the old and the new. */
    jwtPublicKeyPems?: string[];
  };
}

/** The secret could not be read or is not what the functions need. Names fields, never values. */
export class SecretError extends PaynowError {
  static {
    SecretError.prototype.name = 'SecretError';
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** JSON strings often carry PEMs with "\n" written out; Alipay's console hands out bare base64. */
function normalisePem(text: string, label: string): string {
  const pem = text.replace(/\\n/g, '\n').trim();
  if (pem.startsWith('-----BEGIN')) return pem;
  const body = pem.replace(/\s+/g, '');
  return `-----BEGIN ${label}-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END ${label}-----`;
}

/** Each public key block (SPKI or PKCS#1) of a field that may hold several, or the one key it holds (PEM or bare base64). */
function publicKeyBlocks(text: string): string[] {
  const blocks = text.replace(/\\n/g, '\n').match(/-----BEGIN (?:RSA )?PUBLIC KEY-----[\s\S]+?-----END (?:RSA )?PUBLIC KEY-----/g);
  return blocks ?? [normalisePem(text, 'PUBLIC KEY')];
}

/**
 * Reads a string into a key or certificate, or reports `message` against the field. Each key is parsed
 * once here (an RSA private key takes about a millisecond): the checks between fields use the result.
 */
function readAs<T>(read: (text: string) => T, message: string) {
  return v.rawTransform<string, { text: string; parsed: T }>(({ dataset, addIssue, NEVER }) => {
    try {
      return { text: dataset.value, parsed: read(dataset.value) };
    } catch {
      addIssue({ message });
      return NEVER;
    }
  });
}

/** A bare base64 private key is PKCS#8 or PKCS#1; the one that parses names it. */
function readPrivateKey(text: string): { pem: string; key: KeyObject } {
  const pkcs8 = normalisePem(text, 'PRIVATE KEY');
  try {
    return { pem: pkcs8, key: createPrivateKey(pkcs8) };
  } catch (error) {
    const pkcs1 = normalisePem(text, 'RSA PRIVATE KEY');
    if (pkcs1 === pkcs8) throw error;
    return { pem: pkcs1, key: createPrivateKey(pkcs1) };
  }
}

const text = (message: string) => v.pipe(v.string(message), v.trim(), v.nonEmpty(message));
const privateKey = v.pipe(text('is required'), readAs(readPrivateKey, 'is not a readable RSA private key'));
const publicKey = v.pipe(
  text('is required'),
  v.transform((s) => normalisePem(s, 'PUBLIC KEY')),
  readAs(createPublicKey, 'is not a readable public key'),
);
const certificates = v.pipe(
  text('is required'),
  v.transform((s) => s.replace(/\\n/g, '\n')),
  v.check((s) => /-----BEGIN CERTIFICATE-----/.test(s), 'must hold PEM certificates'),
  v.check(
    (s) => (s.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).every(parses((pem) => new X509Certificate(pem))),
    'holds an unreadable certificate',
  ),
);

function parses(parse: (pem: string) => unknown): (pem: string) => boolean {
  return (pem) => {
    try {
      parse(pem);
      return true;
    } catch {
      return false;
    }
  };
}

const wechatSchema = v.pipe(
  v.object(
    {
      merchant_serial: v.pipe(text('is required'), v.regex(/^[0-9A-Fa-f]{8,64}$/, 'must be the certificate serial in hex')),
      merchant_private_key: privateKey,
      merchant_certificate: v.pipe(
        text('is required'),
        v.transform((s) => s.replace(/\\n/g, '\n')),
        readAs((pem) => new X509Certificate(pem), 'is not a readable certificate'),
      ),
      // 32 letters and digits as the merchant platform makes it: its 32 bytes are the AES-256 key, so a
      // character of more than one byte would pass a length check and fail every notification.
      apiv3_key: v.pipe(v.string('is required'), v.length(32, 'must be 32 characters'), v.regex(/^[0-9A-Za-z]*$/, 'must be letters and digits only')),
      pay_public_key_id: v.optional(v.pipe(text('is required'), v.regex(/^PUB_KEY_ID_\w+$/, 'must look like PUB_KEY_ID_...'))),
      pay_public_key: v.optional(publicKey),
      platform_certificates: v.optional(certificates),
    },
    'must be an object',
  ),
  v.forward(
    v.check((w) => Boolean(w.pay_public_key_id) === Boolean(w.pay_public_key), 'pay_public_key_id and pay_public_key go together'),
    ['pay_public_key'],
  ),
  v.forward(
    v.check(
      (w) => Boolean(w.pay_public_key || w.platform_certificates),
      'set pay_public_key_id + pay_public_key, or platform_certificates: every WeChat answer is signature-checked',
    ),
    ['pay_public_key'],
  ),
  v.forward(
    v.check((w) => w.merchant_certificate.parsed.serialNumber.toUpperCase() === w.merchant_serial.toUpperCase(), 'is not the serial of merchant_certificate'),
    ['merchant_serial'],
  ),
  v.forward(
    v.check((w) => w.merchant_certificate.parsed.checkPrivateKey(w.merchant_private_key.parsed.key), 'does not belong to merchant_certificate'),
    ['merchant_private_key'],
  ),
);

const alipaySchema = v.object(
  {
    // PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`), PEM or the bare base64 Alipay's key tool exports.
    app_private_key: privateKey,
    alipay_public_key: publicKey,
  },
  'must be an object',
);

const webhookKey = v.optional(v.pipe(v.string('must be a string'), v.minLength(32, 'must be at least 32 characters')));

const shopSchema = v.pipe(
  v.object(
    {
      webhook_secret: webhookKey,
      webhook_previous_secret: webhookKey,
      // One key, or several PEM blocks one after another while the shop moves to a new key. The public half
      // only: createPublicKey would also derive it from a private key, which must not be here.
      jwt_public_key: v.optional(
        v.pipe(
          text('is required'),
          v.check((key) => !/PRIVATE KEY/.test(key), 'is a private key: only the public key belongs here'),
          v.transform(publicKeyBlocks),
          v.check((pems) => pems.every(parses(createPublicKey)), 'is not a readable public key'),
        ),
      ),
    },
    'must be an object',
  ),
  v.forward(
    v.check((shop) => shop.webhook_previous_secret === undefined || shop.webhook_secret !== undefined, 'needs webhook_secret, the new key, beside it'),
    ['webhook_previous_secret'],
  ),
);

const stageSecretSchema = v.object(
  { wechat: wechatSchema, alipay: alipaySchema, shop: v.optional(shopSchema) },
  'must be a JSON object with wechat and alipay',
);

/** The fields the document may have; anything else is most likely a typo. */
export const STAGE_SECRET_FIELDS = {
  wechat: ['merchant_serial', 'merchant_private_key', 'merchant_certificate', 'apiv3_key', 'pay_public_key_id', 'pay_public_key', 'platform_certificates'],
  alipay: ['app_private_key', 'alipay_public_key'],
  shop: ['webhook_secret', 'webhook_previous_secret', 'jwt_public_key'],
} as const;

/**
 * Reads the secret's JSON text into key material, checking that every key parses and that the
 * merchant's key, certificate and serial belong together.
 * @throws SecretError naming each bad field (`wechat.apiv3_key: must be 32 characters`), never a value
 */
export function parseStageSecret(json: string, source = 'secret'): StageSecret {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch {
    // The parser's message quotes the text around the error: part of a key, perhaps.
    throw new SecretError(`${source} is not valid JSON`);
  }
  const result = v.safeParse(stageSecretSchema, document);
  if (!result.success) {
    const problems = result.issues.map((issue) => {
      const field = issue.path?.map((p) => String(p.key)).join('.');
      // An object's own message also names its missing keys: say what is wrong with the key instead.
      return `${field || '(document)'}: ${field && issue.input === undefined ? 'is required' : issue.message}`;
    });
    throw new SecretError(`${source} is invalid: ${problems.join('; ')}`);
  }
  const { wechat, alipay, shop } = result.output;
  return {
    wechat: {
      merchantSerial: wechat.merchant_serial.toUpperCase(),
      merchantPrivateKeyPem: wechat.merchant_private_key.parsed.pem,
      merchantCertPem: wechat.merchant_certificate.text,
      apiV3Key: wechat.apiv3_key,
      payPublicKeys: wechat.pay_public_key_id && wechat.pay_public_key ? [{ id: wechat.pay_public_key_id, pem: wechat.pay_public_key.text }] : [],
      platformCertificatesPem: wechat.platform_certificates ?? '',
    },
    alipay: { appPrivateKeyPem: alipay.app_private_key.parsed.pem, alipayPublicKeyPem: alipay.alipay_public_key.text },
    shop: {
      ...(shop?.webhook_secret !== undefined && { webhookSecret: shop.webhook_secret }),
      ...(shop?.webhook_previous_secret !== undefined && { webhookPreviousSecret: shop.webhook_previous_secret }),
      ...(shop?.jwt_public_key !== undefined && { jwtPublicKeyPems: shop.jwt_public_key }),
    },
  };
}

/** Fields of the document that the schema does not know (`wechat.apiV3_key`): ignored by the functions, reported by `secret:check`. */
export function unknownStageSecretFields(json: string): string[] {
  const document = JSON.parse(json) as Record<string, unknown>;
  const unknown = Object.keys(document).filter((k) => !(k in STAGE_SECRET_FIELDS));
  for (const [section, fields] of Object.entries(STAGE_SECRET_FIELDS)) {
    const part = document[section];
    if (part && typeof part === 'object')
      unknown.push(
        ...Object.keys(part)
          .filter((k) => !(fields as readonly string[]).includes(k))
          .map((k) => `${section}.${k}`),
      );
  }
  return unknown;
}
