import type { PayStore } from '../store/payStore';
import type { ResolveToken } from './authenticate';

/**
 * APP_TOKENS=session: the token is a session the shop stored with `put-session` (kept as a hash), valid
 * until the instant before its `expires_at`.
 */
export function sessionTokens(store: Pick<PayStore, 'findSession'>): ResolveToken {
  return async (token, now) => {
    const session = await store.findSession(token);
    if (!session) return 'invalid';
    return Date.parse(session.expiresAt) > now.getTime() ? { userId: session.userId } : 'expired';
  };
}
