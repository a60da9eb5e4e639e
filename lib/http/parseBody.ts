import type middy from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { PayError } from '../domain/errors';
import { header } from './headers';
import { quoteJsonNumbers } from './jsonNumbersAsText';

/**
 * Parses the body as JSON, or as a form when the client says `application/x-www-form-urlencoded`
 * (older app builds do). JSON is assumed when no content type is sent. Anything unparsable is
 * INVALID_BODY. Either way a number arrives as the text it was sent as (a JSON number as a string,
 * like a form field), so the field rules judge `99.999999999999999` as sent, not as the 100 a float makes of it.
 */
export function parseBody(): middy.MiddlewareObj<APIGatewayProxyEventV2> {
  // disableContentTypeCheck exists in the code of 6.4.5 but not in its typings.
  const json = httpJsonBodyParser({ disableContentTypeCheck: true } as Parameters<typeof httpJsonBodyParser>[0]);
  return {
    before: async function parseBodyBefore(request) {
      const event = request.event as Omit<APIGatewayProxyEventV2, 'body'> & { body?: unknown };
      const text = event.isBase64Encoded ? Buffer.from(String(event.body ?? ''), 'base64').toString('utf8') : String(event.body ?? '');
      event.isBase64Encoded = false;
      // A JSON object sent as a form (curl -d without a content type does that) is still read as JSON.
      if (/^application\/x-www-form-urlencoded/i.test(header(event.headers, 'content-type') ?? '') && !text.trimStart().startsWith('{')) {
        event.body = Object.fromEntries(new URLSearchParams(text));
        return;
      }
      try {
        // middy's parser decodes the JSON, given it with its numbers already written as text.
        event.body = quoteJsonNumbers(text);
        await json.before?.(request as never);
      } catch (error) {
        throw new PayError('INVALID_BODY', undefined, { cause: error });
      }
    },
  };
}
