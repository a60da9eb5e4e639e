import { createApp } from '../../lib/app';
import { gatewayHandler } from '../../lib/http/gatewayHandler';
import { handleWechatNotification } from '../../lib/pay/gatewayNotifications';

const app = createApp();
const deps = { ...app, wechat: app.config.wechat };
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** POST /notify/wechat: WeChat Pay v3 payment notification. */
export const handler = gatewayHandler(
  app,
  async ({ headers, rawBody }) => {
    const reply = await handleWechatNotification(deps, headers, rawBody);
    return { statusCode: reply.statusCode, headers: JSON_HEADERS, body: reply.body ? JSON.stringify(reply.body) : '' };
  },
  { statusCode: 500, headers: JSON_HEADERS, body: JSON.stringify({ code: 'FAIL', message: '系统繁忙' }) },
);
