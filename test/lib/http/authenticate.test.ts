import type { PayError } from '../../../lib/domain/errors';
import { authenticate } from '../../../lib/http/authenticate';
import { sessionTokens } from '../../../lib/http/sessionTokens';
import { httpEvent, lambdaContext } from '../../../scripts/local/httpEvents';

const EXPIRES_AT = '2026-11-29T12:00:00.000Z';
const store = { findSession: async (token: string) => (token === 'good' ? { userId: 7, expiresAt: EXPIRES_AT } : undefined) };

async function check(token: string | undefined, nowMs: number): Promise<string | number> {
  const request = {
    event: httpEvent({ path: '/order/pay', headers: token === undefined ? {} : { token } }),
    context: { ...lambdaContext },
    response: undefined,
    error: undefined,
    internal: {},
  };
  try {
    await authenticate(sessionTokens(store), () => nowMs).before?.(request as never);
    return (request.context as unknown as { userId: number }).userId;
  } catch (error) {
    return (error as PayError).code;
  }
}

describe('authenticate with APP_TOKENS=session', () => {
  it('lets a session in until the instant before it expires', async () => {
    expect(await check('good', Date.parse(EXPIRES_AT) - 1)).toBe(7);
  });

  it('refuses a token used exactly at its expires_at', async () => {
    expect(await check('good', Date.parse(EXPIRES_AT))).toBe('TOKEN_EXPIRED');
  });

  it.each([
    [undefined, 'TOKEN_MISSING'],
    ['   ', 'TOKEN_MISSING'],
    ['unknown', 'TOKEN_INVALID'],
  ])('token %p -> %s', async (token, code) => {
    expect(await check(token, 0)).toBe(code);
  });
});
