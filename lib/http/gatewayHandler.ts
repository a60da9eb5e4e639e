import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { log } from '../log';

/** The raw request a gateway sent: the exact body bytes matter for its signature. */
export interface GatewayRequest {
  headers: Record<string, string | undefined>;
  rawBody: string;
}

/**
 * A gateway-facing endpoint: hands the handler the raw body and lowercased headers, and turns any
 * unexpected error into `failure` (logged by name only), which makes the gateway send it again.
 */
export function gatewayHandler(
  handler: (request: GatewayRequest) => Promise<APIGatewayProxyStructuredResultV2>,
  failure: APIGatewayProxyStructuredResultV2,
) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use({
      onError: (request) => {
        log.error('notification failed', { name: request.error?.name, error: request.error?.message, requestId: request.context?.awsRequestId });
        request.response = failure;
      },
    })
    .handler((event) =>
      handler({
        headers: Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v as string | undefined])),
        rawBody: event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? ''),
      }),
    );
}
