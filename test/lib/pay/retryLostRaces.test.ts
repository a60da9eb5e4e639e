import { retryLostRaces } from '../../../lib/pay/retryLostRaces';
import { WriteConflict } from '../../../lib/store/payStore';

/** A piece of work that loses its first `losses` races, recording the pauses between tries. */
function racer(losses: number, error: Error = new WriteConflict('state')) {
  const pauses: number[] = [];
  let tries = 0;
  return {
    pauses,
    tries: () => tries,
    work: async () => {
      tries++;
      if (tries <= losses) throw error;
      return 'won';
    },
    options: { rounds: 3, baseDelayMs: 100, random: () => 0.5, sleep: async (ms: number) => void pauses.push(ms) },
  };
}

describe('retryLostRaces', () => {
  it('tries again after a lost race, pausing a random share of a window that doubles', async () => {
    const r = racer(2);
    expect(await retryLostRaces(r.work, r.options)).toBe('won');
    expect(r.tries()).toBe(3);
    expect(r.pauses).toEqual([50, 100]);
  });

  it('spreads the pauses over the whole window (full jitter)', async () => {
    for (const share of [0, 0.999]) {
      const r = racer(1);
      await retryLostRaces(r.work, { ...r.options, random: () => share });
      expect(r.pauses[0]).toBeCloseTo(share * 100);
    }
  });

  it('without a sleep of its own, really waits between tries', async () => {
    const r = racer(1);
    const started = performance.now();
    expect(await retryLostRaces(r.work, { rounds: 2, baseDelayMs: 60, random: () => 1 })).toBe('won');
    // Timers fire no earlier than asked (give or take a millisecond of rounding).
    expect(performance.now() - started).toBeGreaterThanOrEqual(59);
  });

  it('rethrows the last lost race once the rounds are spent', async () => {
    const r = racer(5);
    await expect(retryLostRaces(r.work, r.options)).rejects.toBeInstanceOf(WriteConflict);
    expect(r.tries()).toBe(3);
  });

  it('never repeats work that failed for another reason', async () => {
    const r = racer(1, new Error('gateway down'));
    await expect(retryLostRaces(r.work, r.options)).rejects.toThrow('gateway down');
    expect(r.tries()).toBe(1);
    expect(r.pauses).toEqual([]);
  });
});
