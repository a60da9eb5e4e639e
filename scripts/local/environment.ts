import type { SandboxCredentials } from '../sandbox/credentials';

/**
 * The functions' environment for the local stack: the same variables as on AWS (README,
 * "Configuration"), filled from the sandbox credentials.
 */
export function localFunctionEnvironment(
  credentials: SandboxCredentials,
  local: { tableName: string; dynamodbEndpoint: string; notifyBaseUrl: string },
): Record<string, string> {
  const { wechat, alipay } = credentials;
  return {
    TZ: 'Asia/Shanghai',
    AWS_REGION: 'ap-east-1',
    TABLE_NAME: local.tableName,
    DYNAMODB_ENDPOINT: local.dynamodbEndpoint,
    NOTIFY_BASE_URL: local.notifyBaseUrl,
    WECHAT_APPID: wechat.appid,
    WECHAT_MCHID: wechat.mchid,
    WECHAT_MERCHANT_SERIAL: wechat.merchant_serial,
    WECHAT_MERCHANT_PRIVATE_KEY: wechat.merchant_private_key_pem,
    WECHAT_MERCHANT_CERT: wechat.merchant_cert_pem,
    WECHAT_APIV3_KEY: wechat.apiv3_key,
    WECHAT_GATEWAY_URL: wechat.gateway_url,
    WECHAT_PAY_PUBLIC_KEY_ID: wechat.platform_serial,
    WECHAT_PAY_PUBLIC_KEY: wechat.platform_public_key_pem,
    ALIPAY_APP_ID: alipay.app_id,
    ALIPAY_SELLER_ID: alipay.seller_id,
    ALIPAY_APP_PRIVATE_KEY: alipay.app_private_key_pem,
    ALIPAY_PUBLIC_KEY: alipay.alipay_public_key_pem,
    ALIPAY_GATEWAY_URL: alipay.gateway_url,
  };
}
