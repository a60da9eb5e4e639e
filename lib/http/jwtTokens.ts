import { errors, jwtVerify } from 'jose';
import type { JwtAlgorithm } from '../config';
import { jwtVerificationKeys } from '../secrets/stageNeeds';
import type { ResolveToken } from './authenticate';

/**
 * Seconds of clock difference forgiven on `exp` and `nbf` (jose applies one tolerance to both): a
 * token the shop signs with `nbf` = its own now must work at once even if its clock runs a little
 * ahead of Lambda's, and an expired token living 5 s longer gives nothing away.
 */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface JwtTokenOptions {
  /** JWT_ALGORITHM: the only `alg` accepted, whatever the token's header says. */
  algorithm: JwtAlgorithm;
  /** JWT_ISSUER: when set, `iss` must equal it. */
  issuer?: string;
  /** JWT_AUDIENCE: when set, `aud` must name it. */
  audience?: string;
  /** The keys of `shop.jwt_public_key` in the stage secret's current version (absent when the secret has none). */
  publicKeyPems: string[] | undefined;
  /** Names the secret in errors: `secret paynow/prod`. */
  source: string;
}

/**
 * APP_TOKENS=jwt: the token is a JWT the shop signed. `sub` is the user id (a positive integer as a
 * decimal string) and `exp` is required; an expired token is `expired` (token过期); a bad signature,
 * another `alg` (`none`, HS256 keyed with the public key), a wrong `iss`/`aud`, a missing claim or a
 * malformed token is `invalid`. While the secret holds two keys (a rotation), a token signed with
 * either is verified by it. Build one per version of the secret: jose keeps the key it imported from
 * the `KeyObject` made here.
 *
 * @throws SecretError when the secret has no `shop.jwt_public_key`, or a key that does not fit the algorithm
 * @example const resolve = jwtTokens({ algorithm: 'RS256', publicKeyPems: keys.shop.jwtPublicKeyPems, source: 'secret paynow/prod' });
 */
export function jwtTokens(options: JwtTokenOptions): ResolveToken {
  const keys = jwtVerificationKeys(options.publicKeyPems, options.algorithm, options.source);
  const verifyOptions = {
    algorithms: [options.algorithm],
    issuer: options.issuer,
    audience: options.audience,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
  };

  // jose checks the signature before the claims: a signature of another key is the next key's to check.
  const verify = async (token: string, now: Date, [key, ...others] = keys): Promise<unknown> => {
    try {
      return (await jwtVerify(token, key, { ...verifyOptions, currentDate: now })).payload.sub;
    } catch (error) {
      if (error instanceof errors.JWSSignatureVerificationFailed && others.length) return verify(token, now, others);
      throw error;
    }
  };

  return async (token, now) => {
    let subject: unknown;
    try {
      subject = await verify(token, now);
    } catch (error) {
      if (error instanceof errors.JWTExpired) return 'expired';
      // Anything jose refuses is the token's fault; any other error is ours and is answered as such.
      if (error instanceof errors.JOSEError) return 'invalid';
      throw error;
    }
    const userId = typeof subject === 'string' && /^[1-9]\d*$/.test(subject) ? Number(subject) : Number.NaN;
    return Number.isSafeInteger(userId) ? { userId } : 'invalid';
  };
}
