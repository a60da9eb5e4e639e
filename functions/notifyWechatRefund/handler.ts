import { createApp } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';

export const app = createApp();

/** POST /notify/wechat/refund: WeChat Pay v3 refund notifications (the notify_url of every refund). */
export const handler = notificationHandler(app, 'wechatRefund');
