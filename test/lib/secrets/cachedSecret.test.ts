import { cachedSecret } from '../../../lib/secrets/cachedSecret';

/** A fetcher whose answers the test sets, counting its calls. */
function fakeSecretsManager(initial: string) {
  const state = { text: initial, failWith: undefined as Error | undefined, hang: false, calls: 0 };
  return {
    state,
    fetch: async () => {
      state.calls++;
      if (state.hang) return new Promise<string>(() => undefined);
      if (state.failWith) throw state.failWith;
      return state.text;
    },
  };
}

function setup(initial = '{"version":1}', options: { retryAfterMs?: number; fetchTimeoutMs?: number; firstReadRetryMs?: number } = {}) {
  let now = 1_000_000;
  const source = fakeSecretsManager(initial);
  const failures: unknown[] = [];
  const secret = cachedSecret({
    fetch: source.fetch,
    parse: (text) => {
      const parsed = JSON.parse(text) as { version: number };
      if (typeof parsed.version !== 'number') throw new Error('version: is required');
      return parsed;
    },
    maxAgeMs: 300_000,
    retryAfterMs: options.retryAfterMs,
    fetchTimeoutMs: options.fetchTimeoutMs,
    firstReadRetryMs: options.firstReadRetryMs,
    onRefreshFailure: (error) => failures.push(error),
    now: () => now,
  });
  return { secret, source, failures, advance: (ms: number) => (now += ms) };
}

describe('cachedSecret', () => {
  it('reads the secret once, then serves it from memory until it is maxAge old', async () => {
    const { secret, source, advance } = setup();
    expect(await secret.get()).toEqual({ version: 1 });
    advance(299_999);
    await secret.get();
    expect(source.state.calls).toBe(1);
  });

  it('concurrent first callers share one fetch', async () => {
    const { secret, source } = setup();
    const values = await Promise.all([secret.get(), secret.get(), secret.get()]);
    expect(source.state.calls).toBe(1);
    expect(values[0]).toBe(values[2]);
  });

  it('takes a rotated secret once maxAge has passed, without a redeploy', async () => {
    const { secret, source, advance } = setup();
    await secret.get();
    source.state.text = '{"version":2}';
    advance(299_000);
    expect(await secret.get()).toEqual({ version: 1 });
    advance(1_000);
    expect(await secret.get()).toEqual({ version: 2 });
    expect(source.state.calls).toBe(2);
  });

  it('keeps the same value object while the text is unchanged, so clients built from it are kept', async () => {
    const { secret, advance } = setup();
    const first = await secret.get();
    advance(300_000);
    expect(await secret.get()).toBe(first);
  });

  it('keeps the keys in use when a refresh fails, reports it, and retries only after a pause', async () => {
    const { secret, source, failures, advance } = setup('{"version":1}', { retryAfterMs: 30_000 });
    await secret.get();
    advance(300_000);
    source.state.failWith = new Error('ThrottlingException');
    expect(await secret.get()).toEqual({ version: 1 });
    expect(failures).toEqual([source.state.failWith]);
    advance(29_000);
    expect(await secret.get()).toEqual({ version: 1 });
    expect(source.state.calls).toBe(2);
    source.state.failWith = undefined;
    source.state.text = '{"version":3}';
    advance(1_000);
    expect(await secret.get()).toEqual({ version: 3 });
  });

  it('keeps the keys in use when the rotated version is malformed', async () => {
    const { secret, source, failures, advance } = setup();
    await secret.get();
    source.state.text = '{"versoin":2}';
    advance(300_000);
    expect(await secret.get()).toEqual({ version: 1 });
    expect(String(failures[0])).toContain('version: is required');
  });

  it('throws when there has never been a good value, repeats that error for a moment, then asks again', async () => {
    const { secret, source, advance } = setup('{"versoin":1}', { firstReadRetryMs: 1_000 });
    await expect(secret.get()).rejects.toThrow('version: is required');
    source.state.text = '{"version":1}';
    advance(999);
    await expect(secret.get()).rejects.toThrow('version: is required');
    expect(source.state.calls).toBe(1);
    advance(1);
    expect(await secret.get()).toEqual({ version: 1 });
  });

  it('a fetch that never answers counts as failed after the time limit: the keys in use stay, nothing waits forever', async () => {
    const { secret, source, failures, advance } = setup('{"version":1}', { fetchTimeoutMs: 20 });
    await secret.get();
    advance(300_000);
    source.state.hang = true;
    expect(await secret.get()).toEqual({ version: 1 });
    expect(String(failures[0])).toContain('not read within 20 ms');
    // Paused after the failure, then asked again: still hanging, still answered.
    advance(30_000);
    expect(await secret.get()).toEqual({ version: 1 });
    expect(source.state.calls).toBe(3);
  });

  it('without any value, a fetch that never answers fails the call after the time limit', async () => {
    const { secret, source } = setup('{"version":1}', { fetchTimeoutMs: 20 });
    source.state.hang = true;
    await expect(secret.get()).rejects.toThrow('not read within 20 ms');
  });
});
