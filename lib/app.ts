import { createPublicKey } from 'node:crypto';
import { type Config, loadConfig } from './config';
import type { Channel } from './domain/model';
import { type Clock, systemClock } from './domain/time';
import type { AlipayGateway } from './gateways/alipay';
import { AlipayNotifications, alipayNotificationAnswer } from './gateways/alipayNotifications';
import { verifyAlipayNotification } from './gateways/alipaySignature';
import { type NotificationChannel, type PaymentGateway, TradeAlreadyPaid, TradeClosed, TradeCloseRefused } from './gateways/paymentGateway';
import { wechatNotificationAnswer } from './gateways/wechatNotificationEnvelope';
import { WechatNotifications } from './gateways/wechatNotifications';
import type { WechatPayGateway } from './gateways/wechatPay';
import { WechatRefundNotifications } from './gateways/wechatRefundNotifications';
import { WechatSignatureVerifier } from './gateways/wechatSignature';
import type { ResolveToken } from './http/authenticate';
import type { JwtTokenOptions } from './http/jwtTokens';
import { sessionTokens } from './http/sessionTokens';
import { log } from './log';
import { type MetricDimensions, metrics } from './metrics';
import { cachedSecret, type SecretFetcher } from './secrets/cachedSecret';
import { secretFetcherFor } from './secrets/secretSources';
import { checkStageNeeds, type SecretUse, stageNeedsOf } from './secrets/stageNeeds';
import { parseStageSecret, type StageSecret } from './secrets/stageSecret';
import { withSourceMappedStack } from './sourceMappedStack';
import { createDocumentClient } from './store/dynamoClient';
import { DynamoPayStore } from './store/dynamoPayStore';

/** Each notification endpoint: a gateway's payment notifications, and WeChat's refund notifications. */
export type NotificationRoute = Channel | 'wechatRefund';

/** Everything a function needs, built once per Lambda container. */
export interface App {
  config: Config;
  store: DynamoPayStore;
  /** The gateways, with the current keys of the stage's secret. */
  gateways: Record<Channel, PaymentGateway>;
  /** Each notification endpoint's adapter, with the current keys. */
  notifications: Record<NotificationRoute, NotificationChannel>;
  /** Reads the app's `token` header as APP_TOKENS says: a stored session, or a JWT signed with the key in the current secret. */
  resolveToken: ResolveToken;
  /** AUTO_REFUND_DUPLICATES: a refund case's cash is sent back without waiting for a person. */
  autoRefundDuplicates: boolean;
  /** What the current version of the stage's secret shares with the shop (the webhook signing key). */
  shopSecret(): Promise<StageSecret['shop']>;
  now: Clock;
  /**
   * Resolves once the stage's secret has been read and checked, or fails with a `SecretError` naming
   * the field. The Lambda entries (functions/*\/lambda.ts) wait for it while the function starts, so a
   * bad secret fails the cold start; every handler waits for it too (the tests and the local stack
   * import the handlers directly).
   */
  ready(): Promise<void>;
}

export interface AppOptions {
  /** Where the secret's text comes from; by default what `config.secretId` names. */
  fetchSecret?: SecretFetcher;
  /**
   * The settings whose keys this function uses: a version of the secret without them is refused (the
   * last good keys stay in use, SecretRefreshFailed alarms) and a cold start without them fails. None by
   * default: the other functions do not depend on those keys.
   */
  uses?: readonly SecretUse[];
  now?: Clock;
}

/** What the keys of one version of the secret build: rebuilt only when the secret changes. */
interface Channels {
  keys: StageSecret;
  wechat(): Promise<WechatPayGateway>;
  alipay(): Promise<AlipayGateway>;
  notifications: Record<NotificationRoute, NotificationChannel>;
  /** APP_TOKENS=jwt: the verifier with this version's `shop.jwt_public_key`, built once (jose is loaded on first use). */
  jwtTokens(settings: Omit<JwtTokenOptions, 'publicKeyPems' | 'source'>): Promise<ResolveToken>;
}

/**
 * The composition root. The environment is validated at cold start, and the stage's secret is read
 * while the container initialises (then kept, and read again every `SECRET_MAX_AGE_SECONDS` so a
 * rotated key takes effect without a redeploy). Each gateway SDK is loaded on its first use only, so
 * a WeChat pay never loads Alipay's.
 */
export function createApp(config: Config = loadConfig(), options: AppOptions = {}): App {
  const now = options.now ?? systemClock;
  const store = new DynamoPayStore(createDocumentClient(config.dynamodbEndpoint), config.tableName);
  const secretSource = `secret ${config.secretId}`;
  const needs = stageNeedsOf(config, options.uses ?? []);
  const secret = cachedSecret({
    fetch: options.fetchSecret ?? secretFetcherFor(config.secretId),
    // A version without what this stage's settings use is refused like one that does not parse.
    parse: (text) => checkStageNeeds(parseStageSecret(text, secretSource), needs, secretSource),
    maxAgeMs: config.secretMaxAgeMs,
    now: () => now().getTime(),
    onRefreshFailure: (error) => {
      log.error('stage secret refresh failed; the keys in use stay', { secret_id: config.secretId }, error);
      metrics.count('SecretRefreshFailed', {});
    },
  });
  let built: Channels | undefined;
  const channels = async (): Promise<Channels> => {
    const keys = await secret.get();
    if (built?.keys !== keys) built = buildChannels(config, keys, now);
    return built;
  };
  // Read the secret while the function initialises; a failure here is reported by ready().
  channels().catch(() => undefined);

  return {
    config,
    store,
    gateways: {
      wechat: gatewayProxy('wechat', async () => (await channels()).wechat()),
      alipay: gatewayProxy('alipay', async () => (await channels()).alipay()),
    },
    notifications: {
      // The answers need no keys: a notification is answered even when the secret cannot be read.
      wechat: { channel: 'wechat', open: async (request) => (await channels()).notifications.wechat.open(request), answer: wechatNotificationAnswer },
      alipay: { channel: 'alipay', open: async (request) => (await channels()).notifications.alipay.open(request), answer: alipayNotificationAnswer },
      wechatRefund: {
        channel: 'wechat',
        open: async (request) => (await channels()).notifications.wechatRefund.open(request),
        answer: wechatNotificationAnswer,
      },
    },
    resolveToken: resolveTokenFor(config, store, channels),
    autoRefundDuplicates: config.autoRefundDuplicates,
    shopSecret: async () => (await channels()).keys.shop,
    now,
    // A failure here fails the cold start, printed by the Lambda runtime rather than our logger.
    ready: async () => {
      await channels().catch((error: unknown) => {
        throw withSourceMappedStack(error);
      });
    },
  };
}

function buildChannels(config: Config, keys: StageSecret, now: Clock): Channels {
  const alipayPublicKey = createPublicKey(keys.alipay.alipayPublicKeyPem);
  const verifier = WechatSignatureVerifier.fromPem(keys.wechat.payPublicKeys, keys.wechat.platformCertificatesPem);
  const wechat = once(async () => {
    const { WechatPayGateway } = await import('./gateways/wechatPay');
    return new WechatPayGateway({
      ...config.wechat,
      ...keys.wechat,
      verifier,
      notifyUrl: `${config.notifyBaseUrl}/notify/wechat`,
      refundNotifyUrl: `${config.notifyBaseUrl}/notify/wechat/refund`,
      now,
    });
  });
  const alipay = once(async () => {
    const { AlipayGateway } = await import('./gateways/alipay');
    return new AlipayGateway({ ...config.alipay, ...keys.alipay, notifyUrl: `${config.notifyBaseUrl}/notify/alipay`, now });
  });
  let jwtTokens: Promise<ResolveToken> | undefined;
  return {
    keys,
    wechat,
    alipay,
    jwtTokens: (settings) =>
      (jwtTokens ??= import('./http/jwtTokens').then((jwt) =>
        jwt.jwtTokens({ ...settings, publicKeyPems: keys.shop.jwtPublicKeyPems, source: `secret ${config.secretId}` }),
      )),
    notifications: {
      // WeChat's are verified and decrypted with node:crypto: a WeChat notification never loads an SDK.
      wechat: new WechatNotifications({ appid: config.wechat.appid, mchid: config.wechat.mchid, apiV3Key: keys.wechat.apiV3Key, verifier, now }),
      wechatRefund: new WechatRefundNotifications({ mchid: config.wechat.mchid, apiV3Key: keys.wechat.apiV3Key, verifier, now }),
      alipay: new AlipayNotifications({
        appId: config.alipay.appId,
        sellerId: config.alipay.sellerId,
        // node:crypto, not alipay-sdk: an Alipay notification loads no SDK either.
        verify: async (fields) => verifyAlipayNotification(fields, alipayPublicKey),
        now,
      }),
    },
  };
}

/**
 * APP_TOKENS: sessions need only the table; JWTs need the shop's key from the current version of the
 * secret, so a rotated key is used from the next refresh on.
 */
function resolveTokenFor(config: Config, store: DynamoPayStore, channels: () => Promise<Channels>): ResolveToken {
  const { appTokens } = config;
  if (appTokens.kind === 'session') return sessionTokens(store);
  const { kind: _, ...settings } = appTokens;
  return async (token, now) => (await (await channels()).jwtTokens(settings))(token, now);
}

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}

/** The gateway with the current keys, each call counted and timed by channel and operation. */
function gatewayProxy(channel: Channel, get: () => Promise<PaymentGateway>): PaymentGateway {
  async function measured<T>(operation: MetricDimensions<'GatewayCall'>['operation'], call: (gateway: PaymentGateway) => Promise<T>): Promise<T> {
    const gateway = await get();
    const started = performance.now();
    try {
      return await call(gateway);
    } catch (error) {
      // "Already paid", "closed" and a close refused for one of those are answers; anything else means the gateway could not be used.
      if (!(error instanceof TradeAlreadyPaid || error instanceof TradeClosed || error instanceof TradeCloseRefused))
        metrics.count('GatewayError', { channel, operation });
      throw error;
    } finally {
      metrics.count('GatewayCall', { channel, operation });
      metrics.milliseconds('GatewayLatency', performance.now() - started, { channel, operation });
    }
  }
  return {
    channel,
    // A secret refresh or the adapter's first load can take seconds: the sweeping's limiter waits for it
    // before taking a slot, or every slot taken meanwhile would send at once when it ends.
    ready: async () => {
      await get();
    },
    createPayParam: (request) => measured('prepay', (gateway) => gateway.createPayParam(request)),
    // Signed locally: no call to count. Only WeChat's gateway offers it.
    ...(channel === 'wechat'
      ? {
          resumePayParam: async (prepayId: string) => {
            const gateway = await get();
            if (!gateway.resumePayParam) throw new Error(`the ${channel} gateway cannot resume a pay_param`);
            return gateway.resumePayParam(prepayId);
          },
        }
      : {}),
    queryTrade: (outTradeNo) => measured('query', (gateway) => gateway.queryTrade(outTradeNo)),
    closeTrade: (outTradeNo) => measured('close', (gateway) => gateway.closeTrade(outTradeNo)),
    refund: (request) => measured('refund', (gateway) => gateway.refund(request)),
    queryRefund: (request) => measured('refund_query', (gateway) => gateway.queryRefund(request)),
  };
}
