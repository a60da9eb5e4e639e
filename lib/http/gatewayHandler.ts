import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App } from '../app';
import { log, logger } from '../log';
import { waitForSecret } from './waitForSecret';

/** The raw request a gateway sent: the exact body bytes matter for its signature. */
export interface GatewayRequest {
  headers: Record<string, string | undefined>;
  rawBody: string;
}

/**
 * A gateway-facing endpoint: hands the handler the raw body and lowercased headers once the stage's
 * secret is in hand, and turns any unexpected error into `failure` (logged whole), which makes the
 * gateway send it again.
 */
export function gatewayHandler(
  app: Pick<App, 'ready'>,
  handler: (request: GatewayRequest) => Promise<APIGatewayProxyStructuredResultV2>,
  failure: APIGatewayProxyStructuredResultV2,
) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: function answerFailure(request) {
        log.error('notification failed', {}, request.error);
        request.response = failure;
      },
    })
    .use(waitForSecret(app))
    .handler((event) =>
      handler({
        headers: Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v as string | undefined])),
        rawBody: event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? ''),
      }),
    );
}
