import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App, NotificationRoute } from '../app';
import type { GatewayRequest } from '../gateways/paymentGateway';
import { log, logger } from '../log';
import { handleNotification } from '../pay/handleNotification';
import { waitForSecret } from './waitForSecret';

/**
 * A gateway's notification endpoint: the raw body and lower-cased headers (the exact bytes are what
 * is signed) go to the channel's adapter and the one use case; the adapter renders the answer. Any
 * fault of ours is logged whole and answered `retry`, so the gateway sends the notification again.
 */
export function notificationHandler(
  app: Pick<App, 'ready' | 'store' | 'gateways' | 'notifications' | 'now' | 'autoRefundDuplicates'>,
  route: NotificationRoute,
) {
  const notifications = app.notifications[route];
  const { channel } = notifications;
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: function answerRetry(request) {
        log.error('notification failed', { channel }, request.error);
        request.response = notifications.answer({ kind: 'retry' });
      },
    })
    .use(waitForSecret(app))
    .handler(async (event) => notifications.answer(await handleNotification(app, notifications, gatewayRequest(event))));
}

function gatewayRequest(event: APIGatewayProxyEventV2): GatewayRequest {
  return {
    headers: Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    rawBody: event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? ''),
  };
}
