import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The header every webhook carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with a
 * second `v1` under the previous key while the shop's key is being rotated.
 */
export const SIGNATURE_HEADER = 'Paynow-Signature';

/** How far a receiver should accept a signature's time from its own clock (replays older than this fail). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmac(secret: string, t: string, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
}

/**
 * Signs one delivery: the time is part of what is signed, so a captured delivery cannot be replayed
 * later. One `v1` per key, the current one first: during a rotation a receiver holding either key accepts it.
 */
export function signEvent(body: string, secrets: readonly [string, ...string[]], at: Date): string {
  const t = String(Math.floor(at.getTime() / 1000));
  return [`t=${t}`, ...secrets.map((secret) => `v1=${hmac(secret, t, body)}`)].join(',');
}

/**
 * What a receiver does (the demo receiver and the README's snippet do exactly this): true when one
 * `v1` of the header is the HMAC of `"<t>.<body>"` under the secret, compared in constant time, and `t`
 * is within the tolerance of `now`. The body must be the raw bytes received, before any JSON parsing.
 */
export function verifyEventSignature(
  header: string | undefined,
  body: string,
  secret: string,
  now: Date,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): boolean {
  if (!header) return false;
  const parts = header.split(',').map((part) => part.trim().split('='));
  const t = parts.find(([key]) => key === 't')?.[1];
  if (!t || !/^\d+$/.test(t) || Math.abs(now.getTime() / 1000 - Number(t)) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  return parts.some(([key, value]) => {
    if (key !== 'v1' || !value || !/^[0-9a-f]{64}$/.test(value)) return false;
    return timingSafeEqual(Buffer.from(value, 'hex'), expected);
  });
}
