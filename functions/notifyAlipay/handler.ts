import { createApp } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';

/** POST /notify/alipay: Alipay asynchronous notifications (a form). */
export const handler = notificationHandler(createApp(), 'alipay');
