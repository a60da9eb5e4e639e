import { createApp } from '../../lib/app';
import { gatewayHandler } from '../../lib/http/gatewayHandler';
import { handleAlipayNotification } from '../../lib/pay/gatewayNotifications';

const app = createApp();
const deps = { ...app, alipay: app.config.alipay };
const TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8' };

/** POST /notify/alipay: Alipay asynchronous notification (form-urlencoded). */
export const handler = gatewayHandler(
  app,
  async ({ rawBody }) => {
    // URLSearchParams decodes `+` and %XX once, which is what checkNotifySignV2 expects.
    const fields = Object.fromEntries(new URLSearchParams(rawBody));
    return { statusCode: 200, headers: TEXT_HEADERS, body: await handleAlipayNotification(deps, fields) };
  },
  { statusCode: 200, headers: TEXT_HEADERS, body: 'fail' },
);
