import type middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { PayError } from '../domain/errors';
import type { PayStore } from '../store/payStore';
import { header } from './headers';

/** The Lambda context once `authenticate` has run. */
export interface AuthenticatedContext extends Context {
  userId: number;
}

/**
 * Resolves the `token` header to a user: missing, unknown and expired tokens each get their own
 * code (an expired one answers exactly "token过期", as the app expects).
 */
export function authenticate(store: Pick<PayStore, 'findSession'>, now: () => number): middy.MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: async (request) => {
      const token = header(request.event.headers, 'token')?.trim();
      if (!token) throw new PayError('TOKEN_MISSING');
      const session = await store.findSession(token);
      if (!session) throw new PayError('TOKEN_INVALID');
      if (!(Date.parse(session.expiresAt) > now())) throw new PayError('TOKEN_EXPIRED');
      (request.context as AuthenticatedContext).userId = session.userId;
    },
  };
}
