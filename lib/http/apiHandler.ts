import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App } from '../app';
import { logger } from '../log';
import { type AuthenticatedContext, authenticate } from './authenticate';
import { envelope, type Reply } from './envelope';
import { parseBody } from './parseBody';
import { waitForSecret } from './waitForSecret';

type AppHandler = (event: APIGatewayProxyEventV2 & { body?: unknown }, context: AuthenticatedContext) => Promise<Reply>;

export interface ApiHandlerOptions {
  /** Parse the body (JSON or form); GET routes have none. */
  body?: boolean;
  /** Extra middleware that sees every outcome, after the envelope has been applied (a metric). */
  observe?: middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply>;
}

/**
 * An app-facing endpoint: the invocation's log context, the envelope and error mapping, the stage's
 * secret, the token, then the body. The handler only turns the parsed request into a `Reply`.
 */
export function apiHandler(app: Pick<App, 'resolveToken' | 'ready' | 'now'>, handler: AppHandler, options: ApiHandlerOptions = {}) {
  const wrapped = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply>().use(injectLambdaContext(logger, { resetKeys: true }));
  if (options.observe) wrapped.use(options.observe);
  wrapped
    .use(envelope())
    .use(waitForSecret(app))
    .use(authenticate(app.resolveToken, () => app.now().getTime()));
  if (options.body ?? true) wrapped.use(parseBody());
  return wrapped.handler((event, context) => handler(event, context as AuthenticatedContext));
}
