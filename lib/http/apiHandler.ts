import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { PayStore } from '../store/payStore';
import { authenticate, type AuthenticatedContext } from './authenticate';
import { envelope, type Reply } from './envelope';
import { parseBody } from './parseBody';

type AppHandler = (event: APIGatewayProxyEventV2 & { body?: unknown }, context: AuthenticatedContext) => Promise<Reply>;

/**
 * An app-facing endpoint: envelope and error mapping, then the token, then the body.
 * The handler only turns the parsed request into a `Reply`.
 */
export function apiHandler(store: Pick<PayStore, 'findSession'>, handler: AppHandler, options: { body: boolean } = { body: true }) {
  const wrapped = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 | Reply>()
    .use(envelope())
    .use(authenticate(store));
  if (options.body) wrapped.use(parseBody());
  return wrapped.handler((event, context) => handler(event, context as AuthenticatedContext));
}
