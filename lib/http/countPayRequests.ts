import type middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { PAY_METHODS } from '../domain/model';
import { metrics } from '../metrics';
import type { Reply } from './envelope';

type Request = middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply>;

/**
 * Counts every POST /order/pay by method and outcome (`ok` or the error code answered). Placed
 * outside the envelope, it reads the reply the app really got.
 */
export function countPayRequests(): middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply> {
  const count = (request: Request) => {
    const body = (request.event as { body?: unknown }).body;
    const method = body && typeof body === 'object' ? Number((body as { pay_method?: unknown }).pay_method) : NaN;
    let outcome = 'INTERNAL_ERROR';
    try {
      const reply = JSON.parse(String((request.response as APIGatewayProxyStructuredResultV2 | undefined)?.body)) as { status?: number; code?: string };
      outcome = reply.status === 200 ? 'ok' : (reply.code ?? outcome);
    } catch {
      // no reply body: counted as our fault
    }
    metrics.count('PayRequest', { method: PAY_METHODS.includes(method as never) ? String(method) : 'none', outcome });
  };
  return {
    after: function countPayRequestAfter(request) {
      count(request);
    },
    onError: function countPayRequestOnError(request) {
      count(request);
    },
  };
}
