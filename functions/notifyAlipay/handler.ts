import { createApp } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';

export const app = createApp();

/** POST /notify/alipay: Alipay asynchronous notifications (a form). */
export const handler = notificationHandler(app, 'alipay');
