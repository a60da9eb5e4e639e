import { loadConfig, type Config } from './config';
import type { Channel } from './domain/model';
import type { AlipayGateway } from './gateways/alipay';
import type { PaymentGateway } from './gateways/paymentGateway';
import type { WechatPayGateway } from './gateways/wechatPay';
import { WechatSignatureVerifier } from './gateways/wechatSignature';
import { createDocumentClient } from './store/dynamoClient';
import { DynamoPayStore } from './store/dynamoPayStore';

/** Everything a function needs, built once per Lambda container. */
export interface App {
  config: Config;
  store: DynamoPayStore;
  gateways: Record<Channel, PaymentGateway>;
  /** Checks WeChat Pay signatures (responses and notifications) with the configured keys. */
  wechatVerifier: WechatSignatureVerifier;
  verifyAlipayNotification(fields: Record<string, string>): Promise<boolean>;
}

/**
 * The composition root. Config is validated here, at cold start; each gateway SDK is loaded on
 * its first use only (alipay-sdk alone costs ~160 ms to load), so a WeChat pay never pays for Alipay.
 */
export function createApp(config: Config = loadConfig()): App {
  const store = new DynamoPayStore(createDocumentClient(config.dynamodbEndpoint), config.tableName);
  const wechatVerifier = WechatSignatureVerifier.fromPem(config.wechat.payPublicKeys, config.wechat.platformCertificatesPem);
  const wechat = once(async (): Promise<WechatPayGateway> => {
    const { WechatPayGateway } = await import('./gateways/wechatPay');
    return new WechatPayGateway({ ...config.wechat, verifier: wechatVerifier, notifyUrl: `${config.notifyBaseUrl}/notify/wechat` });
  });
  const alipay = once(async (): Promise<AlipayGateway> => {
    const { AlipayGateway } = await import('./gateways/alipay');
    return new AlipayGateway({ ...config.alipay, notifyUrl: `${config.notifyBaseUrl}/notify/alipay` });
  });
  return {
    config,
    store,
    gateways: { wechat: lazyGateway('wechat', wechat), alipay: lazyGateway('alipay', alipay) },
    wechatVerifier,
    verifyAlipayNotification: async (fields) => (await alipay()).verifyNotification(fields),
  };
}

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}

function lazyGateway(channel: Channel, get: () => Promise<PaymentGateway>): PaymentGateway {
  return {
    channel,
    createPayParam: async (request) => (await get()).createPayParam(request),
    queryTrade: async (outTradeNo) => (await get()).queryTrade(outTradeNo),
    closeTrade: async (outTradeNo) => (await get()).closeTrade(outTradeNo),
  };
}
