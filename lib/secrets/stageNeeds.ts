import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Config, JwtAlgorithm } from '../config';
import { SecretError, type StageSecret } from './stageSecret';

/** What the stage's settings need from its secret, beyond what every stage needs. */
export interface StageNeeds {
  /** APP_TOKENS=jwt: `shop.jwt_public_key`, of the type this algorithm verifies with. */
  jwtAlgorithm?: JwtAlgorithm;
  /** SHOP_WEBHOOK_URL is set: `shop.webhook_secret` signs the events. */
  webhookSecret: boolean;
}

/**
 * The stage settings whose keys a function uses: `appTokens` (payOrder and payStatus verify the app's
 * tokens), `events` (dispatchEvents signs the shop's webhooks). A function that uses neither does not
 * depend on those keys: a notification is still recorded while the JWT key is missing.
 */
export type SecretUse = 'appTokens' | 'events';

/** What the settings a function uses need from the stage secret. */
export function stageNeedsOf(config: Pick<Config, 'appTokens' | 'events'>, uses: readonly SecretUse[]): StageNeeds {
  return {
    ...(uses.includes('appTokens') && config.appTokens.kind === 'jwt' && { jwtAlgorithm: config.appTokens.algorithm }),
    webhookSecret: uses.includes('events') && Boolean(config.events.webhookUrl),
  };
}

/** What key each pinned algorithm verifies with; a key of another type fails loudly, not per token. */
const KEY_FOR: Record<JwtAlgorithm, { describe: string; fits: (key: KeyObject) => boolean }> = {
  RS256: {
    describe: 'an RSA key of at least 2048 bits',
    fits: (key) => key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048,
  },
  ES256: { describe: 'an EC key on P-256', fits: (key) => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' },
  EdDSA: { describe: 'an Ed25519 key', fits: (key) => key.asymmetricKeyType === 'ed25519' },
};

/**
 * The keys app tokens are verified with: one, or during a rotation the old and the new.
 * @throws SecretError when there is no `shop.jwt_public_key`, or a key in it does not fit the algorithm
 */
export function jwtVerificationKeys(publicKeyPems: string[] | undefined, algorithm: JwtAlgorithm, source: string): KeyObject[] {
  if (!publicKeyPems?.length) throw new SecretError(`${source} has no shop.jwt_public_key, which APP_TOKENS=jwt needs`);
  const wanted = KEY_FOR[algorithm];
  return publicKeyPems.map((pem, i) => {
    const key = createPublicKey(pem);
    const which = publicKeyPems.length > 1 ? ` (key ${i + 1} of ${publicKeyPems.length})` : '';
    if (!wanted.fits(key)) throw new SecretError(`${source}: shop.jwt_public_key${which} is not ${wanted.describe}, which JWT_ALGORITHM ${algorithm} needs`);
    return key;
  });
}

/**
 * Checks that a version of the secret has what the stage's settings use, so that a version without it
 * is refused as a whole (the last good keys stay in use, SecretRefreshFailed alarms) instead of being
 * taken and failing every request that needs the missing key.
 * @throws SecretError naming the field and the setting that needs it
 */
export function checkStageNeeds(secret: StageSecret, needs: StageNeeds, source: string): StageSecret {
  if (needs.jwtAlgorithm) jwtVerificationKeys(secret.shop.jwtPublicKeyPems, needs.jwtAlgorithm, source);
  if (needs.webhookSecret && !secret.shop.webhookSecret) throw new SecretError(`${source} has no shop.webhook_secret, which SHOP_WEBHOOK_URL needs`);
  return secret;
}
