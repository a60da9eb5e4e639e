import { loadConfig, type Config } from './config';
import type { Channel } from './domain/model';
import type { PaymentGateway } from './gateways/paymentGateway';
import { WechatSignatureVerifier } from './gateways/wechatSignature';
import { createDocumentClient } from './store/dynamoClient';
import { DynamoPayStore } from './store/dynamoPayStore';

/** Everything a function needs, built once per Lambda container. */
export interface App {
  config: Config;
  store: DynamoPayStore;
  gateways: Record<Channel, PaymentGateway>;
}

/**
 * The composition root. Config is validated here, at cold start; each gateway SDK is loaded on
 * its first use only (alipay-sdk alone costs ~160 ms to load), so a WeChat pay never pays for Alipay.
 */
export function createApp(config: Config = loadConfig()): App {
  const store = new DynamoPayStore(createDocumentClient(config.dynamodbEndpoint), config.tableName);
  const wechatVerifier = WechatSignatureVerifier.fromPem(config.wechat.payPublicKeys, config.wechat.platformCertificatesPem);
  const gateways: Record<Channel, PaymentGateway> = {
    wechat: lazyGateway('wechat', async () => {
      const { WechatPayGateway } = await import('./gateways/wechatPay');
      return new WechatPayGateway({ ...config.wechat, verifier: wechatVerifier, notifyUrl: `${config.notifyBaseUrl}/notify/wechat` });
    }),
    alipay: lazyGateway('alipay', async () => {
      const { AlipayGateway } = await import('./gateways/alipay');
      return new AlipayGateway({ ...config.alipay, notifyUrl: `${config.notifyBaseUrl}/notify/alipay` });
    }),
  };
  return { config, store, gateways };
}

function lazyGateway(channel: Channel, load: () => Promise<PaymentGateway>): PaymentGateway {
  let gateway: Promise<PaymentGateway> | undefined;
  const get = () => (gateway ??= load());
  return {
    channel,
    createPayParam: async (request) => (await get()).createPayParam(request),
    queryTrade: async (outTradeNo) => (await get()).queryTrade(outTradeNo),
    closeTrade: async (outTradeNo) => (await get()).closeTrade(outTradeNo),
  };
}
