import * as v from 'valibot';

/** PEM keys arrive through environment variables, where newlines are often written as "\n". */
const pem = (what: string) =>
  v.pipe(
    v.string(`${what} is required`),
    v.transform((s) => s.replace(/\\n/g, '\n')),
    v.regex(/-----BEGIN [A-Z ]+-----[\s\S]+-----END [A-Z ]+-----/, `${what} must be a PEM`),
  );
const required = (what: string) => v.pipe(v.string(`${what} is required`), v.nonEmpty(`${what} is required`));
const positiveInt = (fallback: string) =>
  v.pipe(v.optional(v.string(), fallback), v.regex(/^[1-9]\d*$/, 'must be a positive integer'), v.transform(Number));
const url = (fallback?: string) =>
  fallback === undefined ? v.pipe(v.string('is required'), v.url()) : v.pipe(v.optional(v.string(), fallback), v.url());

const environmentSchema = v.object({
  TABLE_NAME: required('TABLE_NAME'),
  DYNAMODB_ENDPOINT: v.optional(v.pipe(v.string(), v.url())),
  INTEGRAL_FEN_PER_POINT: positiveInt('1'),
  PAY_TIMEOUT_MINUTES: positiveInt('30'),
  NOTIFY_BASE_URL: url(),
  WECHAT_APPID: required('WECHAT_APPID'),
  WECHAT_MCHID: required('WECHAT_MCHID'),
  WECHAT_MERCHANT_SERIAL: required('WECHAT_MERCHANT_SERIAL'),
  WECHAT_MERCHANT_PRIVATE_KEY: pem('WECHAT_MERCHANT_PRIVATE_KEY'),
  WECHAT_MERCHANT_CERT: pem('WECHAT_MERCHANT_CERT'),
  WECHAT_APIV3_KEY: v.pipe(v.string('WECHAT_APIV3_KEY is required'), v.length(32, 'WECHAT_APIV3_KEY must be 32 characters')),
  WECHAT_GATEWAY_URL: url('https://api.mch.weixin.qq.com'),
  WECHAT_PAY_PUBLIC_KEY_ID: v.optional(v.pipe(v.string(), v.regex(/^PUB_KEY_ID_\w+$/, 'WECHAT_PAY_PUBLIC_KEY_ID must look like PUB_KEY_ID_...'))),
  WECHAT_PAY_PUBLIC_KEY: v.optional(pem('WECHAT_PAY_PUBLIC_KEY')),
  WECHAT_PLATFORM_CERTIFICATES: v.optional(pem('WECHAT_PLATFORM_CERTIFICATES')),
  ALIPAY_APP_ID: required('ALIPAY_APP_ID'),
  ALIPAY_SELLER_ID: required('ALIPAY_SELLER_ID'),
  ALIPAY_APP_PRIVATE_KEY: pem('ALIPAY_APP_PRIVATE_KEY'),
  ALIPAY_PUBLIC_KEY: pem('ALIPAY_PUBLIC_KEY'),
  ALIPAY_GATEWAY_URL: url('https://openapi.alipay.com/gateway.do'),
});

export interface Config {
  tableName: string;
  dynamodbEndpoint?: string;
  fenPerPoint: number;
  payTimeoutMinutes: number;
  notifyBaseUrl: string;
  wechat: {
    appid: string;
    mchid: string;
    merchantSerial: string;
    merchantPrivateKeyPem: string;
    merchantCertPem: string;
    apiV3Key: string;
    gatewayUrl: string;
    /** WeChat Pay public keys by id (`PUB_KEY_ID_...`). */
    payPublicKeys: { id: string; pem: string }[];
    /** Platform certificates, concatenated PEM; the serial is read from each. */
    platformCertificatesPem: string;
  };
  alipay: {
    appId: string;
    /** The merchant's Alipay user id (2088…): a notification must name it. */
    sellerId: string;
    appPrivateKeyPem: string;
    alipayPublicKeyPem: string;
    gatewayUrl: string;
  };
}

/**
 * Reads and validates the environment. Fails with the names of the bad variables only, never
 * their values, since several of them are secrets.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = v.safeParse(environmentSchema, present);
  if (!result.success) {
    const problems = result.issues.map((i) => `${i.path?.map((p) => String(p.key)).join('.')}: ${i.message.replace(/ Received .*$/, '')}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = result.output;
  if (Boolean(e.WECHAT_PAY_PUBLIC_KEY_ID) !== Boolean(e.WECHAT_PAY_PUBLIC_KEY)) {
    throw new Error('invalid configuration: WECHAT_PAY_PUBLIC_KEY_ID and WECHAT_PAY_PUBLIC_KEY go together');
  }
  if (!e.WECHAT_PAY_PUBLIC_KEY && !e.WECHAT_PLATFORM_CERTIFICATES) {
    throw new Error('invalid configuration: set WECHAT_PAY_PUBLIC_KEY_ID + WECHAT_PAY_PUBLIC_KEY and/or WECHAT_PLATFORM_CERTIFICATES');
  }
  return {
    tableName: e.TABLE_NAME,
    dynamodbEndpoint: e.DYNAMODB_ENDPOINT,
    fenPerPoint: e.INTEGRAL_FEN_PER_POINT,
    payTimeoutMinutes: e.PAY_TIMEOUT_MINUTES,
    notifyBaseUrl: e.NOTIFY_BASE_URL.replace(/\/+$/, ''),
    wechat: {
      appid: e.WECHAT_APPID,
      mchid: e.WECHAT_MCHID,
      merchantSerial: e.WECHAT_MERCHANT_SERIAL,
      merchantPrivateKeyPem: e.WECHAT_MERCHANT_PRIVATE_KEY,
      merchantCertPem: e.WECHAT_MERCHANT_CERT,
      apiV3Key: e.WECHAT_APIV3_KEY,
      gatewayUrl: e.WECHAT_GATEWAY_URL.replace(/\/+$/, ''),
      payPublicKeys: e.WECHAT_PAY_PUBLIC_KEY_ID && e.WECHAT_PAY_PUBLIC_KEY ? [{ id: e.WECHAT_PAY_PUBLIC_KEY_ID, pem: e.WECHAT_PAY_PUBLIC_KEY }] : [],
      platformCertificatesPem: e.WECHAT_PLATFORM_CERTIFICATES ?? '',
    },
    alipay: {
      appId: e.ALIPAY_APP_ID,
      sellerId: e.ALIPAY_SELLER_ID,
      appPrivateKeyPem: e.ALIPAY_APP_PRIVATE_KEY,
      alipayPublicKeyPem: e.ALIPAY_PUBLIC_KEY,
      gatewayUrl: e.ALIPAY_GATEWAY_URL,
    },
  };
}
