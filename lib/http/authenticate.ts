import type middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { PayError } from '../domain/errors';
import { header } from './headers';

/** The Lambda context once `authenticate` has run. */
export interface AuthenticatedContext extends Context {
  userId: number;
}

/** What a token says at a given time: its user, or that it has expired, or that nobody we trust issued it. */
export type TokenCheck = { userId: number } | 'expired' | 'invalid';

/**
 * The port behind `authenticate`: reads one token at the instant `now`. APP_TOKENS picks the adapter
 * (`sessionTokens`: a stored session; `jwtTokens`: a JWT signed by the shop). A failure that is not the
 * token's (the store or the secret cannot be read) is thrown, and answered as a fault of ours.
 */
export type ResolveToken = (token: string, now: Date) => Promise<TokenCheck>;

/**
 * Resolves the `token` header to a user: missing, unknown and expired tokens each get their own
 * code (an expired one answers exactly "token过期", as the app expects).
 */
export function authenticate(resolveToken: ResolveToken, now: () => number): middy.MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: async function authenticateBefore(request) {
      const token = header(request.event.headers, 'token')?.trim();
      if (!token) throw new PayError('TOKEN_MISSING');
      const check = await resolveToken(token, new Date(now()));
      if (check === 'invalid') throw new PayError('TOKEN_INVALID');
      if (check === 'expired') throw new PayError('TOKEN_EXPIRED');
      (request.context as AuthenticatedContext).userId = check.userId;
    },
  };
}
