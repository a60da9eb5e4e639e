import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { SandboxCredentials } from '../sandbox/credentials';

/** The file the local stack keeps the sandbox's stage secret in, beside the sandbox credentials. */
export const LOCAL_SECRET_FILE = 'secret.json';

/**
 * The stage secret's JSON document (README, "The stage secret") for the sandbox merchant: what
 * `aws secretsmanager create-secret` would hold on AWS.
 */
export function sandboxStageSecret(credentials: SandboxCredentials): Record<string, Record<string, string>> {
  const { wechat, alipay } = credentials;
  return {
    wechat: {
      merchant_serial: wechat.merchant_serial,
      merchant_private_key: wechat.merchant_private_key_pem,
      merchant_certificate: wechat.merchant_cert_pem,
      apiv3_key: wechat.apiv3_key,
      pay_public_key_id: wechat.platform_serial,
      pay_public_key: wechat.platform_public_key_pem,
    },
    alipay: { app_private_key: alipay.app_private_key_pem, alipay_public_key: alipay.alipay_public_key_pem },
    shop: { webhook_secret: localWebhookSecret(credentials) },
  };
}

/**
 * The local stack's webhook signing key: derived from the sandbox's own generated keys, so the demo
 * receiver knows it without another file, and it differs between sandboxes like they do.
 */
export function localWebhookSecret(credentials: SandboxCredentials): string {
  return createHash('sha256').update(`paynow local webhooks ${credentials.wechat.apiv3_key}`).digest('hex');
}

/** Writes the sandbox's stage secret into `directory` (readable by its owner only) and returns its path. */
export async function writeLocalSecret(credentials: SandboxCredentials, directory: string): Promise<string> {
  await fs.mkdir(directory, { recursive: true });
  const file = path.join(directory, LOCAL_SECRET_FILE);
  await fs.writeFile(file, `${JSON.stringify(sandboxStageSecret(credentials), null, 2)}\n`, { mode: 0o600 });
  return file;
}

/**
 * The functions' environment for the local stack: the same variables as on AWS (README,
 * "Configuration"), with the stage secret read from a local file instead of Secrets Manager.
 */
export function localFunctionEnvironment(
  credentials: SandboxCredentials,
  local: { tableName: string; dynamodbEndpoint: string; notifyBaseUrl: string; secretFile: string; webhookUrl?: string },
): Record<string, string> {
  const { wechat, alipay } = credentials;
  return {
    AWS_REGION: 'ap-east-1',
    POWERTOOLS_SERVICE_NAME: 'paynow-dev',
    TABLE_NAME: local.tableName,
    DYNAMODB_ENDPOINT: local.dynamodbEndpoint,
    SECRET_ID: `file:${local.secretFile}`,
    NOTIFY_BASE_URL: local.notifyBaseUrl,
    WECHAT_APPID: wechat.appid,
    WECHAT_MCHID: wechat.mchid,
    WECHAT_GATEWAY_URL: wechat.gateway_url,
    ALIPAY_APP_ID: alipay.app_id,
    ALIPAY_SELLER_ID: alipay.seller_id,
    ALIPAY_GATEWAY_URL: alipay.gateway_url,
    ...(local.webhookUrl ? { SHOP_WEBHOOK_URL: local.webhookUrl } : {}),
  };
}
