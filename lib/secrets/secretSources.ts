import { readFile } from 'node:fs/promises';
import type { SecretFetcher } from './cachedSecret';
import { SecretError } from './stageSecret';

/** `SECRET_ID` values of this form name a local file instead of a Secrets Manager secret. */
const FILE_PREFIX = 'file:';

/**
 * The fetcher for `SECRET_ID`: a Secrets Manager secret name or ARN on AWS (`paynow/prod`), or
 * `file:/path/secret.json` for the local stack, which holds the same JSON document.
 */
export function secretFetcherFor(secretId: string): SecretFetcher {
  if (secretId.startsWith(FILE_PREFIX)) {
    const path = secretId.slice(FILE_PREFIX.length);
    return async () => {
      try {
        return await readFile(path, 'utf8');
      } catch (error) {
        throw new SecretError(`secret file ${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
      }
    };
  }
  return secretsManagerFetcher(secretId);
}

/**
 * Powertools Parameters' Secrets Manager provider, used as a plain fetch (caching is `cachedSecret`'s):
 * it owns the SDK client and tells binary secrets apart. Loaded on first use, so the local stack,
 * which reads a file, never loads the Secrets Manager client.
 */
function secretsManagerFetcher(secretId: string): SecretFetcher {
  let provider: Promise<import('@aws-lambda-powertools/parameters/secrets').SecretsProvider> | undefined;
  return async () => {
    // The SDK waits forever by default; a stuck connection must fail fast (cachedSecret also times out).
    provider ??= import('@aws-lambda-powertools/parameters/secrets').then(
      ({ SecretsProvider }) => new SecretsProvider({ clientConfig: { requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 } } }),
    );
    let value: unknown;
    try {
      value = await (await provider).get(secretId, { forceFetch: true });
    } catch (error) {
      throw new SecretError(`secret ${secretId} cannot be read from Secrets Manager: ${(error as Error).name}`, { cause: error });
    }
    if (typeof value !== 'string') throw new SecretError(`secret ${secretId} has no SecretString (it must be a JSON text secret)`);
    return value;
  };
}
