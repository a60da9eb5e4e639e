import { CHECK_SCHEDULE, DUE_SHARDS, dueShard, nextCheckAt, queryTimes, retryAfterFailure, stepOf } from '../../../lib/domain/checkSchedule';
import type { AttemptStatus } from '../../../lib/domain/model';
import { DEFAULT_SWEEP } from '../../../lib/pay/sweep';

const MINUTE = 60_000;
const CREATED = Date.parse('2026-11-29T10:00:00.000Z');
const attempt = (status: AttemptStatus = 'open', timeoutMinutes = 30) => ({
  status,
  createdAt: new Date(CREATED).toISOString(),
  expiresAt: new Date(CREATED + timeoutMinutes * MINUTE).toISOString(),
});
const minutesAfterCreation = (times: number[]) => times.map((at) => (at - CREATED) / MINUTE);

describe('queryTimes', () => {
  it('for the default 30 minutes: +2, +9, +16, +23 minutes', () => {
    expect(minutesAfterCreation(queryTimes(attempt()))).toEqual([2, 9, 16, 23]);
  });

  it.each([5, 10, 11, 15, 29, 30, 38, 45, 60, 120, 1440])(
    'for %i minutes: the first at +2, no gap above 8 minutes, the last gap to the expiry within 8 too',
    (timeout) => {
      const times = queryTimes(attempt('open', timeout));
      expect(times[0]).toBe(CREATED + CHECK_SCHEDULE.firstQueryMs);
      const withExpiry = [...times, CREATED + timeout * MINUTE];
      for (let i = 1; i < withExpiry.length; i++) {
        expect(withExpiry[i] - withExpiry[i - 1]).toBeGreaterThan(0);
        expect(withExpiry[i] - withExpiry[i - 1]).toBeLessThanOrEqual(CHECK_SCHEDULE.maxQueryGapMs);
        // A payment right after a query is seen at the next one, a sweep tick and a run's budget later at most: within 10 minutes.
        expect(withExpiry[i] - withExpiry[i - 1] + MINUTE + DEFAULT_SWEEP.budgetMs).toBeLessThanOrEqual(10 * MINUTE);
      }
      // No more queries than the gaps need: one fewer would leave a gap above 8 minutes.
      expect(times.length).toBe(Math.ceil((timeout * MINUTE - CHECK_SCHEDULE.firstQueryMs) / CHECK_SCHEDULE.maxQueryGapMs));
    },
  );

  it('none when the attempt expires within the first 2 minutes: it is only closed at its expiry', () => {
    expect(queryTimes(attempt('open', 2))).toEqual([]);
    expect(queryTimes(attempt('open', 1))).toEqual([]);
  });
});

describe('the gateway calls an abandoned attempt costs', () => {
  it('is 6 for the default 30 minutes: 4 queries, the close, the query after expiry', () => {
    let now = CREATED;
    let current = attempt();
    const calls: string[] = [];
    for (let due = nextCheckAt(current, now); due !== undefined; due = nextCheckAt(current, now)) {
      now = due;
      const step = stepOf(current, due);
      calls.push(`${step}@${(due - CREATED) / MINUTE}`);
      if (step === 'close') current = { ...current, status: 'expired' };
      if (step === 'watch') break;
    }
    expect(calls).toEqual(['query@2', 'query@9', 'query@16', 'query@23', 'close@30', 'watch@35']);
  });
});

describe('nextCheckAt', () => {
  it('an open attempt: the first query time after now, then its expiry', () => {
    const open = attempt();
    expect(nextCheckAt(open, CREATED)).toBe(CREATED + 2 * MINUTE);
    expect(nextCheckAt(open, CREATED + 2 * MINUTE)).toBe(CREATED + 9 * MINUTE);
    // A late sweep (at +12) goes on from the schedule, not from its own lateness.
    expect(nextCheckAt(open, CREATED + 12 * MINUTE)).toBe(CREATED + 16 * MINUTE);
    expect(nextCheckAt(open, CREATED + 23 * MINUTE)).toBe(CREATED + 30 * MINUTE);
  });

  it('an open attempt past its expiry is due at once (its expiry, in the past)', () => {
    expect(nextCheckAt(attempt(), CREATED + 40 * MINUTE)).toBe(CREATED + 30 * MINUTE);
  });

  it.each(['expired', 'superseded', 'failed', 'closed'] as const)('a %s attempt is watched 5 minutes after its expiry', (status) => {
    expect(nextCheckAt(attempt(status), CREATED + 3 * MINUTE)).toBe(CREATED + 35 * MINUTE);
  });

  it.each(['paid', 'refund_required', 'refunded'] as const)('a %s attempt is never due again', (status) => {
    expect(nextCheckAt(attempt(status), CREATED)).toBeUndefined();
  });
});

describe('stepOf', () => {
  it('an open attempt is queried before its expiry and closed from it on', () => {
    expect(stepOf(attempt(), CREATED + 23 * MINUTE)).toBe('query');
    expect(stepOf(attempt(), CREATED + 30 * MINUTE - 1)).toBe('query');
    expect(stepOf(attempt(), CREATED + 30 * MINUTE)).toBe('close');
  });

  it('a released attempt is watched; a paid one has no step', () => {
    expect(stepOf(attempt('superseded'), CREATED + 35 * MINUTE)).toBe('watch');
    expect(stepOf(attempt('paid'), CREATED + 35 * MINUTE)).toBeUndefined();
  });
});

describe('retryAfterFailure', () => {
  const NOW = CREATED;
  it('30 s, 1 min, 2 min, then every 4 minutes (with no jitter drawn)', () => {
    expect([1, 2, 3, 4, 5, 9].map((failures) => (retryAfterFailure(failures, NOW, () => 0) - NOW) / 1000)).toEqual([30, 60, 120, 240, 240, 240]);
  });

  it('takes up to a quarter off, so attempts that failed together spread out', () => {
    expect(retryAfterFailure(1, NOW, () => 1) - NOW).toBe(22_500);
    expect(retryAfterFailure(4, NOW, () => 0.5) - NOW).toBe(210_000);
  });
});

describe('dueShard', () => {
  it('is FNV-1a of the out_trade_no, every character of it (the published 32-bit test vectors)', () => {
    expect(dueShard('a', 2 ** 32)).toBe(0xe40c292c);
    expect(dueShard('foobar', 2 ** 32)).toBe(0xbf9cf968);
    expect(dueShard('foobar')).toBe(0xbf9cf968 % DUE_SHARDS);
  });

  it('is stable and within the shards', () => {
    expect(dueShard('501T1764400000000123')).toBe(dueShard('501T1764400000000123'));
    for (let i = 0; i < 1000; i++) {
      const shard = dueShard(`7${i}T${CREATED + i}`);
      expect(Number.isInteger(shard) && shard >= 0 && shard < DUE_SHARDS).toBe(true);
    }
  });

  it('spreads out_trade_nos made a millisecond apart evenly: no shard takes twice its share of 30,000', () => {
    const counts = new Array<number>(DUE_SHARDS).fill(0);
    for (let i = 0; i < 30_000; i++) counts[dueShard(`${100000 + (i % 997)}T${CREATED + i}${String(i % 10_000).padStart(4, '0')}`)]++;
    const share = 30_000 / DUE_SHARDS;
    expect(Math.max(...counts)).toBeLessThan(2 * share);
    expect(Math.min(...counts)).toBeGreaterThan(share / 2);
  });
});
