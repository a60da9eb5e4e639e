import * as v from 'valibot';
import { PaynowError } from './domain/errors';
import { EVENT_SHARDS } from './domain/events';

const required = (what: string) => v.pipe(v.string(`${what} is required`), v.nonEmpty(`${what} is required`));
const positiveInt = (fallback: string) => v.pipe(v.optional(v.string(), fallback), v.regex(/^[1-9]\d*$/, 'must be a positive integer'), v.transform(Number));
const url = (fallback?: string) => (fallback === undefined ? v.pipe(v.string('is required'), v.url()) : v.pipe(v.optional(v.string(), fallback), v.url()));

const hasNoCredentials = (url: URL) => !url.username && !url.password;
const isHttpsOrLoopback = (url: URL) => url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
/** A check of a parsed URL; text that is no URL passes it, as valibot runs every check of a pipe and v.url reports that. */
const ofUrl = (test: (url: URL) => boolean) => (text: string) => {
  const url = URL.parse(text);
  return url === null || test(url);
};

/** The signature algorithms a shop's JWT may be configured with (RFC 8725: one, pinned, never taken from the token). */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/**
 * How the app's `token` header is read: a session the shop stored with `put-session` (default), or a
 * JWT the shop signed, verified with `shop.jwt_public_key` from the stage's secret.
 */
export type AppTokens =
  | { kind: 'session' }
  | {
      kind: 'jwt';
      /** The only `alg` accepted. */
      algorithm: JwtAlgorithm;
      /** When set, the token's `iss` must equal it. */
      issuer?: string;
      /** When set, the token's `aud` must name it. */
      audience?: string;
    };

const environmentSchema = v.object({
  TABLE_NAME: required('TABLE_NAME'),
  SECRET_ID: required('SECRET_ID'),
  SECRET_MAX_AGE_SECONDS: positiveInt('300'),
  DYNAMODB_ENDPOINT: v.optional(v.pipe(v.string(), v.url())),
  INTEGRAL_FEN_PER_POINT: positiveInt('1'),
  PAY_TIMEOUT_MINUTES: positiveInt('30'),
  SWEEP_GROUPS: positiveInt('4'),
  SWEEP_GATEWAY_CALLS_PER_SECOND: positiveInt('100'),
  DISPATCH_GROUPS: v.pipe(positiveInt('1'), v.maxValue(EVENT_SHARDS, `must be at most ${EVENT_SHARDS} (the outbox's shards)`)),
  AUTO_REFUND_DUPLICATES: v.pipe(
    v.optional(v.picklist(['true', 'false'], 'must be true or false'), 'true'),
    v.transform((value) => value === 'true'),
  ),
  APP_TOKENS: v.optional(v.picklist(['session', 'jwt'], 'must be session or jwt'), 'session'),
  JWT_ALGORITHM: v.optional(v.picklist(JWT_ALGORITHMS, `must be one of ${JWT_ALGORITHMS.join(', ')}`), 'RS256'),
  JWT_ISSUER: v.optional(v.string()),
  JWT_AUDIENCE: v.optional(v.string()),
  NOTIFY_BASE_URL: url(),
  // In the functions' environment, which holds nothing secret: no user or password in it. Sent over
  // https, but for this machine (the local stack's receiver).
  SHOP_WEBHOOK_URL: v.optional(
    v.pipe(
      v.string(),
      v.url(),
      v.check(ofUrl(hasNoCredentials), 'must not carry a user or password: deliveries are signed with shop.webhook_secret'),
      v.check(ofUrl(isHttpsOrLoopback), 'must be https (http only to 127.0.0.1 or localhost)'),
    ),
  ),
  // A name of this account and region (the role may put on exactly that bus): an ARN is refused.
  EVENT_BUS_NAME: v.optional(v.pipe(v.string(), v.regex(/^[\w.\-/]{1,256}$/, 'must be an EventBridge bus name (not an ARN)'))),
  WECHAT_APPID: required('WECHAT_APPID'),
  WECHAT_MCHID: required('WECHAT_MCHID'),
  WECHAT_GATEWAY_URL: url('https://api.mch.weixin.qq.com'),
  ALIPAY_APP_ID: required('ALIPAY_APP_ID'),
  ALIPAY_SELLER_ID: required('ALIPAY_SELLER_ID'),
  ALIPAY_GATEWAY_URL: url('https://openapi.alipay.com/gateway.do'),
});

/**
 * The functions' settings, from their environment. Nothing here is secret: the key material is
 * read at run time from the stage's secret (`SECRET_ID`, see lib/secrets/).
 */
export interface Config {
  tableName: string;
  /** A Secrets Manager secret name or ARN, or `file:/path.json` in the local stack. */
  secretId: string;
  secretMaxAgeMs: number;
  dynamodbEndpoint?: string;
  fenPerPoint: number;
  payTimeoutMinutes: number;
  /**
   * SWEEP_GROUPS: sweep workers, each on its share of the due shards (one scheduled invocation each);
   * SWEEP_GATEWAY_CALLS_PER_SECOND: the sweeping's gateway calls a second per channel, all workers together.
   */
  sweep: { groups: number; gatewayCallsPerSecond: number };
  /** A refund case's cash goes back at once (default); `false` leaves it to a person (`npm run refund`). */
  autoRefundDuplicates: boolean;
  /** APP_TOKENS, and with `jwt` JWT_ALGORITHM, JWT_ISSUER, JWT_AUDIENCE. */
  appTokens: AppTokens;
  notifyBaseUrl: string;
  /** Where the shop's events go (README "Events"): its webhook URL and/or an EventBridge bus. */
  events: {
    webhookUrl?: string;
    busName?: string;
  };
  /** DISPATCH_GROUPS: dispatcher runs side by side, each on its share of the outbox's shards (one scheduled invocation each). */
  dispatch: { groups: number };
  wechat: {
    appid: string;
    mchid: string;
    gatewayUrl: string;
  };
  alipay: {
    appId: string;
    /** The merchant's Alipay user id (2088…): a notification must name it. */
    sellerId: string;
    gatewayUrl: string;
  };
}

/** Reads and validates the environment. Fails with the names of the bad variables, never their values. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = v.safeParse(environmentSchema, present);
  if (!result.success) {
    const problems = result.issues.map((i) => `${i.path?.map((p) => String(p.key)).join('.')}: ${i.message.replace(/ Received .*$/, '')}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = result.output;
  return {
    tableName: e.TABLE_NAME,
    secretId: e.SECRET_ID,
    secretMaxAgeMs: e.SECRET_MAX_AGE_SECONDS * 1000,
    dynamodbEndpoint: e.DYNAMODB_ENDPOINT,
    fenPerPoint: e.INTEGRAL_FEN_PER_POINT,
    payTimeoutMinutes: e.PAY_TIMEOUT_MINUTES,
    sweep: { groups: e.SWEEP_GROUPS, gatewayCallsPerSecond: e.SWEEP_GATEWAY_CALLS_PER_SECOND },
    autoRefundDuplicates: e.AUTO_REFUND_DUPLICATES,
    appTokens:
      e.APP_TOKENS === 'jwt'
        ? { kind: 'jwt', algorithm: e.JWT_ALGORITHM, ...(e.JWT_ISSUER && { issuer: e.JWT_ISSUER }), ...(e.JWT_AUDIENCE && { audience: e.JWT_AUDIENCE }) }
        : { kind: 'session' },
    events: { webhookUrl: e.SHOP_WEBHOOK_URL, busName: e.EVENT_BUS_NAME },
    dispatch: { groups: e.DISPATCH_GROUPS },
    notifyBaseUrl: e.NOTIFY_BASE_URL.replace(/\/+$/, ''),
    wechat: {
      appid: e.WECHAT_APPID,
      mchid: e.WECHAT_MCHID,
      gatewayUrl: e.WECHAT_GATEWAY_URL.replace(/\/+$/, ''),
    },
    alipay: {
      appId: e.ALIPAY_APP_ID,
      sellerId: e.ALIPAY_SELLER_ID,
      gatewayUrl: e.ALIPAY_GATEWAY_URL,
    },
  };
}

/** The environment is not what the functions need: fails the cold start. */
export class ConfigError extends PaynowError {
  static {
    ConfigError.prototype.name = 'ConfigError';
  }

  constructor(message: string) {
    super(message);
  }
}
