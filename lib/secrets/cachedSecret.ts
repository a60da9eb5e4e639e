import { SecretError } from './stageSecret';

/** Where a secret's text comes from: Secrets Manager on AWS, a file in the local stack. */
export type SecretFetcher = () => Promise<string>;

export interface CachedSecretOptions<T> {
  fetch: SecretFetcher;
  /** Turns the text into what callers use; throws on a bad document. */
  parse: (text: string) => T;
  /** How long a value is used before it is fetched again: a rotated key takes effect within this. */
  maxAgeMs: number;
  /** After a failed refresh the current value is kept and the fetch retried no sooner than this. */
  retryAfterMs?: number;
  /** Without any good value yet, a failed read is tried again no sooner than this (the error is repeated meanwhile). */
  firstReadRetryMs?: number;
  /** A fetch that has not answered within this counts as failed (Secrets Manager unreachable). */
  fetchTimeoutMs?: number;
  /** Told about a refresh that failed while the current value stayed in use. */
  onRefreshFailure?: (error: unknown) => void;
  now?: () => number;
}

/**
 * A secret read once and kept, then read again at most every `maxAgeMs` so that a rotated key takes
 * effect without a redeploy. Concurrent callers share one fetch. The parsed value keeps its identity
 * while the text is unchanged, so what is built from it (gateway clients) can be kept too.
 *
 * A refresh that fails or does not answer within `fetchTimeoutMs` (Secrets Manager unreachable, a
 * malformed new version) keeps the last good value: the keys that worked a few minutes ago are the
 * best there are, and the failure is reported. Only when there has never been a good value does `get`
 * throw, and then it repeats that error for `firstReadRetryMs` instead of asking again at every call.
 *
 * @example
 * const secret = cachedSecret({ fetch: () => readFile(path, 'utf8'), parse: parseStageSecret, maxAgeMs: 300_000 });
 * const keys = await secret.get();
 */
export function cachedSecret<T>(options: CachedSecretOptions<T>): { get(): Promise<T> } {
  const now = options.now ?? Date.now;
  const retryAfterMs = options.retryAfterMs ?? 30_000;
  const firstReadRetryMs = options.firstReadRetryMs ?? 1_000;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 3_000;
  let current: { text: string; value: T; fetchedAt: number } | undefined;
  let failure: { at: number; error: unknown } | undefined;
  let inFlight: Promise<T> | undefined;

  async function refresh(): Promise<T> {
    try {
      const text = await withTimeout(options.fetch(), fetchTimeoutMs);
      const value = current?.text === text ? current.value : options.parse(text);
      current = { text, value, fetchedAt: now() };
      failure = undefined;
      return value;
    } catch (error) {
      failure = { at: now(), error };
      if (!current) throw error;
      options.onRefreshFailure?.(error);
      return current.value;
    }
  }

  return {
    get(): Promise<T> {
      const t = now();
      if (current && (t - current.fetchedAt < options.maxAgeMs || (failure && t - failure.at < retryAfterMs))) return Promise.resolve(current.value);
      if (!current && failure && t - failure.at < firstReadRetryMs) return Promise.reject(failure.error);
      inFlight ??= refresh().finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SecretError(`the secret was not read within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
