import { createApp } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';

/** POST /notify/wechat: WeChat Pay v3 payment notifications. */
export const handler = notificationHandler(createApp(), 'wechat');
