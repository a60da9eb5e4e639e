import { createApp } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';

export const app = createApp();

/** POST /notify/wechat: WeChat Pay v3 payment notifications. */
export const handler = notificationHandler(app, 'wechat');
