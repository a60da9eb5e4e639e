import type middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ERRORS, type ErrorCode, PayError } from '../domain/errors';
import { log } from '../log';

/** What a handler returns on success: the envelope's msg and data. */
export interface Reply {
  msg: string;
  data: unknown;
}

type Request = middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

function respond(body: object, statusCode = 200): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
}

function failureReply(code: ErrorCode, msg: string = ERRORS[code]): APIGatewayProxyStructuredResultV2 {
  // A fault of ours (not the user's) is a 500 for monitoring; the app reads `status` either way.
  return respond({ status: 0, msg, code, data: [] }, code === 'INTERNAL_ERROR' ? 500 : 200);
}

/**
 * Wraps every reply in the app's envelope `{status, msg, data}`: 200 on success, 0 with a stable
 * `code` on failure. A user's mistake is logged by its code only; any other error is a fault of
 * ours, logged whole (name, message, stack, cause) and answered as INTERNAL_ERROR, never with a
 * stack trace.
 */
export function envelope(): middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply> {
  return {
    after: function envelopeAfter(request: Request) {
      const reply = request.response as Reply;
      request.response = respond({ status: 200, msg: reply.msg, data: reply.data });
    },
    onError: function envelopeOnError(request: Request) {
      const error = request.error;
      if (error instanceof PayError) {
        log.info('request refused', { code: error.code });
        request.response = failureReply(error.code, error.message);
        return;
      }
      log.error('request failed', {}, error);
      request.response = failureReply('INTERNAL_ERROR');
    },
  };
}
