/**
 * The sweeping's schedule on the real stack (dynalite, the sandbox gateway): each step happens when it is
 * due and not more often, a payment is found at the next check, failures come back after a backoff, a
 * worker that dies leaves the attempt due, one worker per group at a time, the cap on gateway calls, and
 * the move of attempts left in the partitions of before the due index.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DUE_SHARDS, dueShard, queryTimes } from '../../../lib/domain/checkSchedule';
import type { Attempt, Channel } from '../../../lib/domain/model';
import { GatewayError, type PaymentGateway, TradeAlreadyPaid } from '../../../lib/gateways/paymentGateway';
import { logger } from '../../../lib/log';
import type { CompletePaymentDeps } from '../../../lib/pay/completePayment';
import { beforeEachCall, CallRateLimiter, rateLimited, tradeOfCall } from '../../../lib/pay/gatewayRateLimit';
import { DEFAULT_SWEEP, type SweepOptions, shardsOf, sweep, sweepShare } from '../../../lib/pay/sweep';
import { dueIndex } from '../../../lib/store/items';
import { captureOutput } from '../../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../../support/stack';
import { tableState } from '../../support/tableState';
import { gatewayPayment, givenUser, pay, storeWith } from '../../support/world';

const MINUTE = 60_000;
let stack: TestStack;
let state: ReturnType<typeof tableState>;

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** Every gateway call the sweeping makes, with the trade it was about and when it started. */
interface Call {
  channel: Channel;
  operation: string;
  outTradeNo: string;
  at: number;
}

function recording(calls: Call[], gateways = stack.app.gateways): Record<Channel, PaymentGateway> {
  return beforeEachCall(gateways, (channel, operation, args) => {
    calls.push({ channel, operation, outTradeNo: tradeOfCall(args), at: performance.now() });
  });
}

/** A sweep of every group, `ms` after `from` (the attempt's creation), through recorded gateways. */
function sweepAt(from: number, ms: number, calls: Call[] = [], over: Partial<CompletePaymentDeps> = {}, options: Partial<SweepOptions> = {}) {
  return sweep({ store: stack.app.store, gateways: recording(calls), now: () => new Date(from + ms), ...over }, { ...DEFAULT_SWEEP, ...options });
}

/** The attempt's stored creation time: sweeps are timed from it, so a slow pay cannot shift them. */
const createdOf = async (outTradeNo: string) => Date.parse(String((await state.attempt(outTradeNo))?.created_at));
/** When the attempt is next due, as its index sort key says. */
const dueOf = async (outTradeNo: string) => String((await state.attempt(outTradeNo))?.gsi1sk).split('#')[0];
/** The attempt's `n`-th query time (0: +2 min, 1: +9, ...), from its stored creation and expiry. */
const queryTime = async (outTradeNo: string, n: number) => {
  const item = await state.attempt(outTradeNo);
  return new Date(queryTimes({ createdAt: String(item?.created_at), expiresAt: String(item?.expires_at) })[n]).toISOString();
};

/**
 * `store` (the stack's by default) reading only `outTradeNo` among the due attempts: another test's attempt
 * that shares its shard (1 in 128) is neither swept nor counted, so a report's counts are this attempt's.
 */
function ownOnly(outTradeNo: string, store: CompletePaymentDeps['store'] = stack.app.store): CompletePaymentDeps['store'] {
  return Object.assign(Object.create(store), {
    findDueAttempts: async (...args: Parameters<CompletePaymentDeps['store']['findDueAttempts']>) => {
      const page = await store.findDueAttempts(...args);
      return { ...page, attempts: page.attempts.filter((attempt) => attempt.outTradeNo === outTradeNo) };
    },
  });
}

/** A sweep of the attempt's own shard (128 groups of one shard), of that attempt alone: other tests' attempts are not touched. */
function sweepOwn(outTradeNo: string, from: number, ms: number, calls: Call[] = [], over: Partial<CompletePaymentDeps> = {}) {
  return sweep(
    { gateways: recording(calls), now: () => new Date(from + ms), ...over, store: ownOnly(outTradeNo, over.store) },
    { ...DEFAULT_SWEEP, groups: DUE_SHARDS },
    dueShard(outTradeNo),
  );
}

/** Every earlier test's attempt swept to its end (closed, released, checked once more), so only new ones are due. */
async function sweepEverythingDue() {
  await sweepAt(Date.now(), 3 * 60 * MINUTE);
  await sweepAt(Date.now(), 4 * 60 * MINUTE);
}

/** A cash attempt paid and captured as its notification would: out of the index, as the store leaves it. */
async function paidAttempt() {
  const { outTradeNo } = await pay(stack, await givenUser(stack, 0), { method: 1 });
  await stack.app.store.captureAttempt((await stack.app.store.getAttempt(outTradeNo))!, gatewayPayment(outTradeNo), new Date().toISOString());
  return { outTradeNo, created: await createdOf(outTradeNo) };
}

/**
 * The gateways, with WeChat answering a query of `outTradeNo`'s trade signed "paid" for `amountFen`. Other
 * tests' attempts may share its shard: their trades are answered by the sandbox as before.
 */
function answeringPaid(outTradeNo: string, amountFen: number, over: Partial<PaymentGateway> = {}): Record<Channel, PaymentGateway> {
  const real = stack.app.gateways.wechat;
  const wechat: PaymentGateway = Object.assign(Object.create(real), {
    queryTrade: async (trade: string) =>
      trade === outTradeNo ? { state: 'paid', transactionId: `t-${outTradeNo}`, amountFen, paidAt: new Date().toISOString() } : real.queryTrade(trade),
    ...over,
  });
  return { ...stack.app.gateways, wechat };
}

const of = (calls: Call[], outTradeNo: string) => calls.filter((call) => call.outTradeNo === outTradeNo).map((call) => call.operation);

describe('an abandoned attempt', () => {
  it('released at its expiry says so in one line, naming its attempt and order', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    logger.resetKeys();
    const { lines } = await captureOutput(() => sweepOwn(outTradeNo, created, 30 * MINUTE + 1_000));
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'expired attempt released', out_trade_no: outTradeNo, order_id: user.orderId }),
    );
  });

  it('is queried at +2, +9, +16, +23 min, closed and released at its expiry, asked once more 5 min later, then left alone: 6 gateway calls', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    const calls: Call[] = [];
    const callsByMinute: Record<number, string[]> = {};
    for (let minute = 0; minute <= 45; minute++) {
      const before = of(calls, attempt.outTradeNo).length;
      await sweepOwn(attempt.outTradeNo, created, minute * MINUTE + 1_000, calls);
      const made = of(calls, attempt.outTradeNo).slice(before);
      if (made.length) callsByMinute[minute] = made;
      if (minute === 29) expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
      if (minute === 30) {
        // Released at the sweep of its expiry minute: points back, order unpaid, closed at WeChat.
        expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired', gsi1pk: expect.stringMatching(/^DUE#/) });
        expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
        expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
        expect(stack.gateway.trade(attempt.outTradeNo)?.status).toBe('CLOSED');
      }
    }
    expect(callsByMinute).toEqual({
      2: ['queryTrade'],
      9: ['queryTrade'],
      16: ['queryTrade'],
      23: ['queryTrade'],
      30: ['closeTrade'],
      35: ['queryTrade'],
    });
    expect(await state.attempt(attempt.outTradeNo)).not.toHaveProperty('gsi1pk');
  });
});

describe('an open attempt its gateway has closed (a switch closed it, then neither its new attempt nor the release was written)', () => {
  it('is released as superseded at its next query, points back and order unpaid, not held until its expiry; asked once more after its expiry', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    await stack.app.gateways.wechat.closeTrade(attempt.outTradeNo);
    const calls: Call[] = [];
    logger.resetKeys();
    const { lines } = await captureOutput(() => sweepOwn(attempt.outTradeNo, created, 2 * MINUTE + 1_000, calls));
    expect(of(calls, attempt.outTradeNo)).toEqual(['queryTrade']);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'superseded', gsi1pk: expect.stringMatching(/^DUE#/) });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'unpaid' });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'closed attempt released', out_trade_no: attempt.outTradeNo, order_id: user.orderId }),
    );
    // Asked once more 5 minutes after its expiry, as any released attempt.
    const expiresAt = Date.parse(String((await state.attempt(attempt.outTradeNo))?.expires_at));
    expect(await dueOf(attempt.outTradeNo)).toBe(new Date(expiresAt + 5 * MINUTE).toISOString());
  });
});

describe('a paid attempt whose notification never came', () => {
  it('is captured at its next check: paid just after the +9 query, captured at +16, not before', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    await sweepOwn(attempt.outTradeNo, created, 9 * MINUTE + 1_000);
    const { transactionId } = stack.gateway.pay(attempt.outTradeNo);
    await sweepOwn(attempt.outTradeNo, created, 15 * MINUTE + 59_000);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
    expect(await sweepOwn(attempt.outTradeNo, created, 16 * MINUTE + 1_000)).toMatchObject({ paid: 1 });
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'paid', transaction_id: transactionId });
    expect(await state.attempt(attempt.outTradeNo)).not.toHaveProperty('gsi1pk');
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
  });

  it('paid in the last minutes before its expiry: the close finds it paid and it is captured, not released', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    await sweepOwn(attempt.outTradeNo, created, 23 * MINUTE + 1_000);
    stack.gateway.pay(attempt.outTradeNo);
    const calls: Call[] = [];
    expect(await sweepOwn(attempt.outTradeNo, created, 30 * MINUTE + 1_000, calls)).toMatchObject({ paid: 1, released: 0 });
    expect(of(calls, attempt.outTradeNo)).toEqual(['closeTrade', 'queryTrade']);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'paid' });
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: attempt.outTradeNo });
  });
});

describe('what a sweep reads', () => {
  it('every page of a shard: two attempts due in one shard, read one a page, are both queried', async () => {
    // Attempts until two land in the same shard (of 128: a handful of pays).
    const byShard = new Map<number, string>();
    let pair: [string, string] | undefined;
    while (!pair) {
      const { outTradeNo } = await pay(stack, await givenUser(stack, 0), { method: 1 });
      const other = byShard.get(dueShard(outTradeNo));
      if (other) pair = [other, outTradeNo];
      else byShard.set(dueShard(outTradeNo), outTradeNo);
    }
    // Timed from the last pay, however long the pays took: both are past their +2 min query, neither at +9.
    const sweptAt = Date.now() + 2 * MINUTE + 1_000;
    const calls: Call[] = [];
    const report = await sweep(
      { store: stack.app.store, gateways: recording(calls), now: () => new Date(sweptAt) },
      { ...DEFAULT_SWEEP, groups: DUE_SHARDS, pageSize: 1 },
      dueShard(pair[0]),
    );
    expect(report.rescheduled).toBeGreaterThanOrEqual(2);
    for (const outTradeNo of pair) expect(of(calls, outTradeNo)).toEqual(['queryTrade']);
    for (const outTradeNo of pair) expect(await dueOf(outTradeNo)).toBe(await queryTime(outTradeNo, 1));
  });

  it('an attempt done with (paid) but still indexed, as writes of before the due index left it, is taken out of the index without a gateway call', async () => {
    const { outTradeNo, created } = await paidAttempt();
    await state.placeInIndex(outTradeNo, dueIndex(outTradeNo, new Date(created).toISOString()));
    const calls: Call[] = [];
    // Other tests' attempts may share the shard: what is asserted is this attempt's.
    expect((await sweepOwn(outTradeNo, created, MINUTE, calls)).unwatched).toBeGreaterThanOrEqual(1);
    expect(of(calls, outTradeNo)).toEqual([]);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
  });

  it('an attempt released by another worker while this one closed it is not released twice, nor counted', async () => {
    const user = await givenUser(stack, 1000);
    const { outTradeNo } = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(outTradeNo);
    const stale = (await stack.app.store.getAttempt(outTradeNo))!;
    const racing = beforeEachCall(stack.app.gateways, async (_channel, operation) => {
      // The other worker: same attempt, released first.
      if (operation === 'closeTrade') await stack.app.store.releaseAttempt(stale, 'expired', new Date().toISOString(), true);
    });
    const { lines, result } = await captureOutput(() => sweepOwn(outTradeNo, created, 30 * MINUTE + 1_000, [], { gateways: racing }));
    expect(result.failed).toBe(0);
    // Other tests' attempts may share the shard and be released: none of the lines is about this one.
    expect(lines.filter((line) => line.message === 'expired attempt released' && line.out_trade_no === outTradeNo)).toEqual([]);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    expect((await state.ledger(user.userId)).filter((entry) => entry.kind === 'release')).toHaveLength(1);
  });
});

describe('what a sweep leaves alone', () => {
  it('a run whose time is up before it starts (its budget used to the millisecond) checks nothing: no gateway call, the attempt still due', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    const due = await dueOf(attempt.outTradeNo);
    const calls: Call[] = [];
    const leases: number[] = [];
    const store = storeWith(stack, {
      claimSweepLease: (group, ...rest) => {
        leases.push(group);
        return stack.app.store.claimSweepLease(group, ...rest);
      },
    });
    // The run's elapsed time standing still at 0: exactly its budget of 0 ms.
    const elapsed = jest.spyOn(performance, 'now').mockReturnValue(1_000);
    try {
      expect(await sweepAt(created, 2 * MINUTE + 1_000, calls, { store }, { budgetMs: 0 })).toMatchObject({ checked: 0, busy: 0 });
    } finally {
      elapsed.mockRestore();
    }
    expect(calls).toEqual([]);
    // Not even a lease taken: a run out of time writes nothing.
    expect(leases).toEqual([]);
    expect(await dueOf(attempt.outTradeNo)).toBe(due);
  });

  it('a run whose time runs out while it takes its lease checks nothing, and gives the lease back', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const due = await dueOf(outTradeNo);
    // The run's elapsed time: 0 when it starts, exactly its budget of 50 ms once the lease is taken.
    let elapsed = 0;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => 1_000 + elapsed);
    const released: number[] = [];
    const store = storeWith(stack, {
      claimSweepLease: async (...args) => {
        const claimed = await stack.app.store.claimSweepLease(...args);
        elapsed = 50;
        return claimed;
      },
      releaseSweepLease: async (group, owner) => {
        released.push(group);
        return stack.app.store.releaseSweepLease(group, owner);
      },
    });
    const calls: Call[] = [];
    try {
      const report = await sweep(
        { store, gateways: recording(calls), now: () => new Date(created + 2 * MINUTE + 1_000) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS, budgetMs: 50 },
        dueShard(outTradeNo),
      );
      expect(report).toMatchObject({ checked: 0, busy: 0 });
    } finally {
      clock.mockRestore();
    }
    expect(calls).toEqual([]);
    expect(released).toEqual([dueShard(outTradeNo)]);
    expect(await dueOf(outTradeNo)).toBe(due);
  });

  it('an attempt whose query another worker already rescheduled is not counted as rescheduled', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    // Every reschedule of the shard finds the attempt moved on (its condition on the due time fails).
    const store = storeWith(stack, { rescheduleCheck: async () => false });
    const calls: Call[] = [];
    expect(await sweepOwn(outTradeNo, created, 2 * MINUTE + 1_000, calls, { store })).toMatchObject({ rescheduled: 0, failed: 0 });
    expect(of(calls, outTradeNo)).toEqual(['queryTrade']);
  });

  it('an attempt done with that another worker took out of the index first is not counted as taken out', async () => {
    const { outTradeNo, created } = await paidAttempt();
    await state.placeInIndex(outTradeNo, dueIndex(outTradeNo, new Date(created).toISOString()));
    const asked: string[] = [];
    const store = storeWith(stack, {
      unwatchAttempt: async (attempt) => {
        asked.push(attempt.outTradeNo);
        return false;
      },
    });
    expect(await sweepOwn(outTradeNo, created, MINUTE, [], { store })).toMatchObject({ unwatched: 0, failed: 0 });
    // It was this attempt the sweep tried to take out (other tests' attempts may share the shard).
    expect(asked).toContain(outTradeNo);
    // The real one takes it out, so the books stay as other tests expect.
    await sweepOwn(outTradeNo, created, MINUTE);
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
  });
  it('an expired attempt that a notification completed while it was being closed is neither released nor counted', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    // The release finds the attempt no longer open, as after a notification between the close and the release.
    const store = storeWith(stack, { releaseAttempt: async () => false });
    const { lines, result } = await captureOutput(() => sweepOwn(attempt.outTradeNo, created, 30 * MINUTE + 1_000, [], { store }));
    expect(result).toMatchObject({ released: 0, failed: 0 });
    expect(lines.filter((line) => line.message === 'expired attempt released')).toEqual([]);
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'open' });
  });
});

/** WeChat's close, refusing `outTradeNo` alone with `error`. */
const closeRefusing = (outTradeNo: string, error: Error) => async (trade: string) => {
  if (trade !== outTradeNo) return stack.app.gateways.wechat.closeTrade(trade);
  throw error;
};

describe('a signed "paid" answer of another amount, at any step, is never counted paid: backed off, for a person', () => {
  it.each([
    ['a query', 2 * MINUTE + 1_000],
    ['the close at its expiry (refused as paid)', 30 * MINUTE + 1_000],
  ])('%s', async (_step, ms) => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const report = await sweepOwn(outTradeNo, created, ms, [], {
      gateways: answeringPaid(outTradeNo, 1, { closeTrade: closeRefusing(outTradeNo, new TradeAlreadyPaid(outTradeNo)) }),
    });
    expect(report).toMatchObject({ paid: 0 });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open', check_failures: 1 });
    // The gateway answering truly again: the schedule goes on (released once expired, for the books).
    await sweepOwn(outTradeNo, created, 31 * MINUTE);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
  });
});

describe('a payment the table does not know, at any step, is never counted paid: backed off, for a person', () => {
  // The attempt read from the index, gone from the table when its payment is recorded: \`unknown_attempt\`.
  it.each([
    ['a query', 2 * MINUTE + 1_000],
    ['the close at its expiry (refused as paid)', 30 * MINUTE + 1_000],
    ['the last look after the expiry', 35 * MINUTE + 1_000],
  ])('%s', async (step, ms) => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    if (step.startsWith('the last look')) await sweepOwn(outTradeNo, created, 30 * MINUTE + 1_000);
    const store = storeWith(stack, { getAttempt: async (trade) => (trade === outTradeNo ? undefined : stack.app.store.getAttempt(trade)) });
    const { lines, result } = await captureOutput(() =>
      sweepOwn(outTradeNo, created, ms, [], {
        store,
        gateways: answeringPaid(outTradeNo, 8800, { closeTrade: closeRefusing(outTradeNo, new TradeAlreadyPaid(outTradeNo)) }),
      }),
    );
    expect(result).toMatchObject({ paid: 0 });
    expect(lines.filter((line) => line.out_trade_no === outTradeNo).map((line) => line.message)).toContain('payment for an unknown attempt');
    expect(await state.attempt(outTradeNo)).toMatchObject({ check_failures: 1, gsi1pk: expect.stringMatching(/^DUE#/) });
    // The gateway answering truly again: the schedule goes on, released once expired, then let go.
    await sweepOwn(outTradeNo, created, 31 * MINUTE);
    await sweepOwn(outTradeNo, created, 37 * MINUTE);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
  });
});

describe('the close at the expiry refused as paid while the query says it is not paid (a gateway contradicting itself)', () => {
  it.each(['unpaid', 'closed'] as const)('the query saying %s: neither counted paid nor released, due again after a backoff', async (answered) => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const sandbox = stack.app.gateways.wechat;
    const wechat: PaymentGateway = Object.assign(Object.create(sandbox), {
      closeTrade: closeRefusing(outTradeNo, new TradeAlreadyPaid(outTradeNo)),
      // The sandbox itself answers unpaid; "closed" is answered in its place.
      queryTrade: async (asked: string) => (asked === outTradeNo && answered === 'closed' ? { state: answered } : sandbox.queryTrade(asked)),
    });
    const calls: Call[] = [];
    const { result: report, lines } = await captureOutput(() =>
      sweep(
        { store: ownOnly(outTradeNo), gateways: recording(calls, { ...stack.app.gateways, wechat }), now: () => new Date(created + 30 * MINUTE + 1_000) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS },
        dueShard(outTradeNo),
      ),
    );
    expect(report).toMatchObject({ paid: 0, released: 0, failed: 1 });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'sweep failed',
        out_trade_no: outTradeNo,
        error: expect.objectContaining({
          name: 'GatewayError',
          message: `close refused as paid, but the query says ${answered}`,
          cause: expect.objectContaining({ name: 'TradeAlreadyPaid' }),
        }),
      }),
    );
    expect(of(calls, outTradeNo)).toEqual(['closeTrade', 'queryTrade']);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open', check_failures: 1 });
    await sweepOwn(outTradeNo, created, 31 * MINUTE);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
  });
});

describe('the close at the expiry refused with an error the sweep does not know', () => {
  /** WeChat refusing to close `outTradeNo` with an answer no adapter maps (as for a paid trade, by some accounts). */
  const refusingClose = (outTradeNo: string) => closeRefusing(outTradeNo, new GatewayError('wechat close failed: HTTP 400 ORDER_PAID'));

  it('asks the query: a trade paid is completed and counted paid, not retried at the close forever', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const calls: Call[] = [];
    const report = await sweep(
      {
        store: ownOnly(outTradeNo),
        gateways: recording(calls, answeringPaid(outTradeNo, 8800, { closeTrade: refusingClose(outTradeNo) })),
        now: () => new Date(created + 30 * MINUTE + 1_000),
      },
      { ...DEFAULT_SWEEP, groups: DUE_SHARDS },
      dueShard(outTradeNo),
    );
    expect(report).toMatchObject({ paid: 1, released: 0, failed: 0 });
    expect(of(calls, outTradeNo)).toEqual(['closeTrade', 'queryTrade']);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
  });

  it.each(['closed', 'not_found'] as const)('asks the query: a trade the gateway says is %s is released', async (gatewayState) => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    const real = stack.app.gateways.wechat;
    const wechat: PaymentGateway = Object.assign(Object.create(real), {
      closeTrade: refusingClose(attempt.outTradeNo),
      queryTrade: async (trade: string) => (trade === attempt.outTradeNo ? { state: gatewayState } : real.queryTrade(trade)),
    });
    const report = await sweepOwn(attempt.outTradeNo, created, 30 * MINUTE + 1_000, [], { gateways: { ...stack.app.gateways, wechat } });
    expect(report).toMatchObject({ released: 1, failed: 0 });
    expect(await state.attempt(attempt.outTradeNo)).toMatchObject({ status: 'expired' });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });

  it('asks the query: a trade still payable is backed off and counted failed, the close error in its line; the next close releases it', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const wechat: PaymentGateway = Object.assign(Object.create(stack.app.gateways.wechat), { closeTrade: refusingClose(outTradeNo) });
    logger.resetKeys();
    const { lines, result } = await captureOutput(() =>
      sweepOwn(outTradeNo, created, 30 * MINUTE + 1_000, [], { gateways: { ...stack.app.gateways, wechat } }),
    );
    expect(result).toMatchObject({ paid: 0, released: 0, failed: 1 });
    expect(lines.filter((line) => line.message === 'sweep failed' && line.out_trade_no === outTradeNo)).toEqual([
      expect.objectContaining({ error: expect.objectContaining({ message: 'wechat close failed: HTTP 400 ORDER_PAID' }) }),
    ]);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'open', check_failures: 1 });
    await sweepOwn(outTradeNo, created, 31 * MINUTE);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
  });
});

describe('the last look after the expiry', () => {
  /** An attempt released at its expiry by the sweep, so that its next step is the watch at expiry + 5 min. */
  async function released() {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    await sweepOwn(outTradeNo, created, 30 * MINUTE + 1_000);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
    return { outTradeNo, created };
  }

  it('a signed "paid" answer of another amount is neither paid nor let go: due again after a backoff, for a person', async () => {
    const { outTradeNo, created } = await released();
    const at = created + 35 * MINUTE + 1_000;
    const { lines, result } = await captureOutput(() =>
      sweep(
        { store: ownOnly(outTradeNo), gateways: answeringPaid(outTradeNo, 1), now: () => new Date(at) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS },
        dueShard(outTradeNo),
      ),
    );
    expect(result).toMatchObject({ paid: 0 });
    expect(lines.filter((line) => line.out_trade_no === outTradeNo).map((line) => line.message)).toContain('payment does not match its attempt');
    const item = await state.attempt(outTradeNo);
    expect(item).toMatchObject({ status: 'expired', check_failures: 1, gsi1pk: expect.stringMatching(/^DUE#/) });
    expect(Date.parse(String(item?.gsi1sk).split('#')[0]) - at).toBeGreaterThanOrEqual(22_500);
    // The gateway answering truly again: unpaid, out of the index.
    await sweepOwn(outTradeNo, created, 36 * MINUTE);
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
  });

  it('a paid answer of its own amount is completed and counted as paid', async () => {
    const { outTradeNo, created } = await released();
    // Paid on the closed pay sheet after all (WeChat may still settle one that was on its way).
    expect(await sweepOwn(outTradeNo, created, 35 * MINUTE + 1_000, [], { gateways: answeringPaid(outTradeNo, 8800) })).toMatchObject({ paid: 1 });
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
  });

  it('an attempt another worker already let go is not counted as let go', async () => {
    const { outTradeNo, created } = await released();
    const store = storeWith(stack, { unwatchAttempt: async () => false });
    const calls: Call[] = [];
    expect(await sweepOwn(outTradeNo, created, 35 * MINUTE + 1_000, calls, { store })).toMatchObject({ unwatched: 0, failed: 0 });
    expect(of(calls, outTradeNo)).toEqual(['queryTrade']);
    await sweepOwn(outTradeNo, created, 35 * MINUTE + 1_000);
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
  });
});

describe('a check that fails', () => {
  // The sandbox fails the next request of a kind, whoever makes it: nothing else may be due.
  beforeEach(sweepEverythingDue);

  it.each(['500', 'rate_limited', 'drop'] as const)('(%s at WeChat) is due again after a backoff, then goes on with its schedule', async (how) => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    stack.gateway.failNext('wechat.query', 1, how);
    const calls: Call[] = [];
    await sweepAt(created, 2 * MINUTE + 1_000, calls);
    const failed = await state.attempt(attempt.outTradeNo);
    expect(failed).toMatchObject({ status: 'open', check_failures: 1 });
    const dueAt = Date.parse(String(failed?.gsi1sk).split('#')[0]);
    // 30 s, less up to a quarter: not at once (which would hammer a gateway that refuses), not lost.
    expect(dueAt - (created + 2 * MINUTE + 1_000)).toBeGreaterThanOrEqual(22_500);
    expect(dueAt - (created + 2 * MINUTE + 1_000)).toBeLessThanOrEqual(30_000);
    await sweepAt(created, 2 * MINUTE + 20_000, calls);
    expect(of(calls, attempt.outTradeNo)).toEqual(['queryTrade']);
    await sweepAt(created, 2 * MINUTE + 32_000, calls);
    expect(of(calls, attempt.outTradeNo)).toEqual(['queryTrade', 'queryTrade']);
    expect(await state.attempt(attempt.outTradeNo)).not.toHaveProperty('check_failures');
    expect(await dueOf(attempt.outTradeNo)).toBe(await queryTime(attempt.outTradeNo, 1));
  });

  it('failing again and again backs off 30 s, 1, 2, then 4 minutes, and is released once the gateway answers', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    await sweepAt(created, 23 * MINUTE + 1_000);
    let at = 30 * MINUTE + 1_000;
    const delays: number[] = [];
    for (let failures = 1; failures <= 5; failures++) {
      stack.gateway.failNext('wechat.close', 1, '500');
      await sweepAt(created, at);
      const item = await state.attempt(attempt.outTradeNo);
      expect(item).toMatchObject({ status: 'open', check_failures: failures });
      const dueAt = Date.parse(String(item?.gsi1sk).split('#')[0]);
      delays.push(dueAt - (created + at));
      at = dueAt - created;
    }
    const full = [30_000, 60_000, 120_000, 240_000, 240_000];
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(full[i] * 0.75);
      expect(delay).toBeLessThanOrEqual(full[i]);
    });
    expect(await sweepAt(created, at)).toMatchObject({ released: 1 });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
  });

  it('a worker that dies between the gateway call and its write leaves the attempt due; the next run does the step', async () => {
    const user = await givenUser(stack, 1000);
    const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    const created = await createdOf(attempt.outTradeNo);
    // The process dies right after the query answered: no reschedule, no backoff written.
    const store = storeWith(stack, {
      rescheduleCheck: async () => {
        throw new Error('process died');
      },
    });
    const calls: Call[] = [];
    logger.resetKeys(); // the pay bound its out_trade_no: the lines must name it themselves
    const { result, lines } = await captureOutput(() => sweepAt(created, 2 * MINUTE + 1_000, calls, { store }));
    expect(result.failed).toBeGreaterThan(0);
    // What a person reads: the step failed, and its backoff could not be written either.
    const mine = lines.filter((line) => line.out_trade_no === attempt.outTradeNo);
    expect(mine).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'sweep could not reschedule' }));
    expect(mine).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'sweep failed' }));
    expect(await dueOf(attempt.outTradeNo)).toBe(await queryTime(attempt.outTradeNo, 0));
    await sweepAt(created, 3 * MINUTE + 1_000, calls);
    expect(of(calls, attempt.outTradeNo)).toEqual(['queryTrade', 'queryTrade']);
    expect(await dueOf(attempt.outTradeNo)).toBe(await queryTime(attempt.outTradeNo, 1));
  });
});

describe('workers', () => {
  it('the groups split the shards between them: each shard in exactly one group', () => {
    for (const groups of [1, 4, 16, 128]) {
      const all = Array.from({ length: groups }, (_, group) => shardsOf(group, groups)).flat();
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: DUE_SHARDS }, (_, shard) => shard));
    }
  });

  it('reads the first page of its 32 shards `concurrency` at a time: no more reads in flight, so no more connections to open cold', async () => {
    const reads: number[] = [];
    let inFlight = 0;
    let most = 0;
    const store = storeWith(stack, {
      findDueAttempts: async (shard, ...rest) => {
        reads.push(shard);
        most = Math.max(most, ++inFlight);
        try {
          return await stack.app.store.findDueAttempts(shard, ...rest);
        } finally {
          inFlight--;
        }
      },
    });
    const report = await sweep({ store, gateways: stack.app.gateways, now: () => new Date(0) }, { ...DEFAULT_SWEEP, groups: 4, concurrency: 8 }, 1);
    expect(report.busy).toBe(0);
    expect(reads.sort((a, b) => a - b)).toEqual(shardsOf(1, 4));
    expect(most).toBe(8);
  });

  it('a worker holds its lease while it works: a second worker of its group started meanwhile is busy', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const group = dueShard(outTradeNo);
    let second: Awaited<ReturnType<typeof sweep>> | undefined;
    const during = beforeEachCall(stack.app.gateways, async () => {
      second ??= await sweep(
        { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(created + 2 * MINUTE + 1_000) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS },
        group,
      );
    });
    const first = await sweepOwn(outTradeNo, created, 2 * MINUTE + 1_000, [], { gateways: during });
    expect(first).toMatchObject({ busy: 0 });
    expect(first.checked).toBeGreaterThanOrEqual(1);
    expect(second).toMatchObject({ busy: 1, checked: 0 });
  });

  it('gives its lease back only once every step in flight has ended, even when a page read fails', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    const attempt = (await stack.app.store.getAttempt(outTradeNo))!;
    let stepsInFlight = 0;
    const atRelease: number[] = [];
    const store = storeWith(stack, {
      // The group's one shard: a first page with this attempt and more to read, then a read that fails.
      findDueAttempts: async (_shard, _dueBy, _limit, after) => {
        if (after) throw new Error('ProvisionedThroughputExceededException');
        return { attempts: [attempt], after: 'more' };
      },
      releaseSweepLease: async (...args) => {
        atRelease.push(stepsInFlight);
        return stack.app.store.releaseSweepLease(...args);
      },
    });
    const slowQuery = beforeEachCall(stack.app.gateways, async () => {
      stepsInFlight++;
      await new Promise((resolve) => setTimeout(resolve, 100));
      stepsInFlight--;
    });
    await expect(
      sweep(
        { store, gateways: slowQuery, now: () => new Date(created + 2 * MINUTE + 1_000) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS, concurrency: 2 },
        dueShard(outTradeNo),
      ),
    ).rejects.toThrow('ProvisionedThroughputExceededException');
    expect(atRelease).toEqual([0]);
  });

  it('a failed read of the due refunds while its first pages are still being read fails the run, lease given back; the process lives on', async () => {
    // In a process of its own, as on Lambda: there an unhandled rejection ends the process, and the
    // lease is never given back (jest would swallow it).
    const dir = await mkdtemp(join(tmpdir(), 'paynow-sweep-'));
    const script = join(dir, 'run.ts');
    await writeFile(
      script,
      `import { DEFAULT_SWEEP, sweep } from ${JSON.stringify(join(__dirname, '..', '..', '..', 'lib', 'pay', 'sweep'))};
       const released: number[] = [];
       const store = {
         claimSweepLease: async () => true,
         releaseSweepLease: async (group: number) => void released.push(group),
         findDueRefunds: async () => { throw new Error('refunds unreadable'); },
         findDueAttempts: async () => { await new Promise((resolve) => setTimeout(resolve, 50)); return { attempts: [] }; },
       };
       sweep({ store, gateways: { wechat: {}, alipay: {} }, now: () => new Date(0) } as never, { ...DEFAULT_SWEEP, groups: 4 }, 0).then(
         () => console.log('resolved'),
         (error: Error) => setTimeout(() => console.log(JSON.stringify({ rejected: error.message, released })), 100),
       );`,
    );
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), script], {
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
      });
      expect(JSON.parse(stdout.trim().split('\n').pop() ?? '')).toEqual({ rejected: 'refunds unreadable', released: [0] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('only group 0 follows up refunds and moves attempts of before the due index', async () => {
    const refunds: string[] = [];
    const legacy: string[] = [];
    const store = storeWith(stack, {
      findDueRefunds: (...args) => {
        refunds.push('asked');
        return stack.app.store.findDueRefunds(...args);
      },
      findLegacyIndexed: (...args) => {
        legacy.push('asked');
        return stack.app.store.findLegacyIndexed(...args);
      },
    });
    const at = { store, gateways: stack.app.gateways, now: () => new Date(0) };
    await sweep(at, { ...DEFAULT_SWEEP, groups: DUE_SHARDS }, 1);
    expect({ refunds, legacy }).toEqual({ refunds: [], legacy: [] });
    await sweep(at, { ...DEFAULT_SWEEP, groups: DUE_SHARDS }, 0);
    expect({ refunds, legacy }).toEqual({ refunds: ['asked'], legacy: ['asked'] });
  });

  it('one worker per group at a time: a second one finds the lease taken and does nothing', async () => {
    const user = await givenUser(stack, 1000);
    const created = Date.now();
    await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
    expect(await stack.app.store.claimSweepLease(2, 'someone-else', new Date(created).toISOString(), new Date(created + MINUTE).toISOString())).toBe(true);
    const report = await sweep(
      { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(created + 2 * MINUTE + 1_000) },
      { ...DEFAULT_SWEEP, groups: 4 },
      2,
    );
    // Its lease ran out at +1 min: taken over at +2.
    expect(report.busy).toBe(0);
    expect(await stack.app.store.claimSweepLease(3, 'someone-else', new Date(created).toISOString(), new Date(created + 10 * MINUTE).toISOString())).toBe(true);
    const blocked = await sweep(
      { store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(created + 2 * MINUTE + 1_000) },
      { ...DEFAULT_SWEEP, groups: 4 },
      3,
    );
    expect(blocked).toMatchObject({ busy: 1, checked: 0 });
    await stack.app.store.releaseSweepLease(3, 'someone-else');
    expect((await sweep({ store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(created) }, { ...DEFAULT_SWEEP, groups: 4 }, 3)).busy).toBe(
      0,
    );
  });

  it('counts its gateway calls by channel: an Alipay query is an Alipay call', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 2 });
    const created = await createdOf(outTradeNo);
    const calls: Call[] = [];
    const report = await sweepOwn(outTradeNo, created, 2 * MINUTE + 1_000, calls);
    const byChannel = (channel: Channel) => calls.filter((call) => call.channel === channel).length;
    expect(of(calls, outTradeNo)).toEqual(['queryTrade']);
    expect({ wechat: report.gateway_calls_wechat, alipay: report.gateway_calls_alipay }).toEqual({ wechat: byChannel('wechat'), alipay: byChannel('alipay') });
    expect(report.gateway_calls_alipay).toBeGreaterThanOrEqual(1);
  });

  describe('an Alipay attempt at its expiry: the query first (Alipay closes its trades itself at time_expire), a close only for a trade still payable', () => {
    /** An Alipay attempt whose order string the payer `opened` (or not), then swept at its expiry. */
    async function alipayAtExpiry(opened: boolean, closedByAlipay: boolean) {
      const user = await givenUser(stack, 1000);
      const result = await pay(stack, user, { method: 5, points: 800, priceFen: 8000 });
      if (opened && result.outcome === 'pay_param') stack.gateway.registerAlipayOrder(String(result.payParam));
      if (closedByAlipay) await stack.app.gateways.alipay.closeTrade(result.outTradeNo);
      const created = await createdOf(result.outTradeNo);
      const calls: Call[] = [];
      const report = await sweepOwn(result.outTradeNo, created, 30 * MINUTE + 1_000, calls);
      return { user, outTradeNo: result.outTradeNo, calls: of(calls, result.outTradeNo), report };
    }

    it.each([
      ['opened, then closed by Alipay at its time_expire', true, true],
      ['never opened (no trade at Alipay)', false, false],
    ])('%s: one query, no close, released with its points back', async (_what, opened, closedByAlipay) => {
      const { user, outTradeNo, calls, report } = await alipayAtExpiry(opened, closedByAlipay);
      expect(calls).toEqual(['queryTrade']);
      expect(report).toMatchObject({ released: 1, failed: 0, gateway_calls_alipay: 1 });
      expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'expired' });
      expect(await state.account(user.userId)).toMatchObject({ integral_available: 1000, integral_held: 0 });
    });

    it('opened and still payable: queried, then closed, then released', async () => {
      const { outTradeNo, calls, report } = await alipayAtExpiry(true, false);
      expect(calls).toEqual(['queryTrade', 'closeTrade']);
      expect(report).toMatchObject({ released: 1, failed: 0, gateway_calls_alipay: 2 });
      expect(stack.gateway.trade(outTradeNo)?.status).toBe('CLOSED');
    });

    it('paid meanwhile: captured by the query, never closed', async () => {
      const user = await givenUser(stack, 0);
      const result = await pay(stack, user, { method: 2 });
      if (result.outcome === 'pay_param') stack.gateway.registerAlipayOrder(String(result.payParam));
      stack.gateway.pay(result.outTradeNo);
      const calls: Call[] = [];
      const report = await sweepOwn(result.outTradeNo, await createdOf(result.outTradeNo), 30 * MINUTE + 1_000, calls);
      expect(of(calls, result.outTradeNo)).toEqual(['queryTrade']);
      expect(report).toMatchObject({ paid: 1, released: 0 });
      expect(await state.attempt(result.outTradeNo)).toMatchObject({ status: 'paid' });
    });
  });

  it('never start more gateway calls a second per channel than the cap, nor any one group more than its share', async () => {
    await sweepEverythingDue();
    const attempts: string[] = [];
    for (let i = 0; i < 12; i++) {
      const order = await givenUser(stack, 0);
      attempts.push((await pay(stack, order, { method: 1 })).outTradeNo);
    }
    // After the last one was made: every one of them is due at the sweep below.
    const created = Date.now();
    const calls: Call[] = [];
    // 2 groups sharing 8 calls a second: 4 each, and this run is all groups in turn.
    const options = { groups: 2, gatewayCallsPerSecond: 8, concurrency: 8 };
    expect(sweepShare(options)).toBe(4);
    const report = await sweepAt(created, 2 * MINUTE + 1_000, calls, {}, options);
    const mine = calls.filter((call) => attempts.includes(call.outTradeNo));
    expect(mine).toHaveLength(12);
    expect(report.gateway_calls_wechat).toBeGreaterThanOrEqual(12);
    // Recorded just after the limiter let each call go, so a busy event loop can delay one record by a
    // few milliseconds: windows of 950 ms. Without the limiter all 12 start within a few dozen.
    const mostInOneSecond = (of: Call[]) => Math.max(...of.map(({ at }) => of.filter((other) => other.at >= at && other.at < at + 950).length));
    const wechat = calls.filter((call) => call.channel === 'wechat');
    expect(mostInOneSecond(wechat)).toBeLessThanOrEqual(8);
    for (const group of [0, 1]) expect(mostInOneSecond(wechat.filter((call) => dueShard(call.outTradeNo) % 2 === group))).toBeLessThanOrEqual(4);
  });
});

describe('one channel slow (a gateway that hangs, or one held at its cap)', () => {
  /** `n` unpaid attempts of `method` (1 WeChat, 2 Alipay), each a new order, as the store reads them. */
  async function unpaidAttempts(method: 1 | 2, n: number) {
    const attempts: Attempt[] = [];
    for (let i = 0; i < n; i++) {
      const { outTradeNo } = await pay(stack, await givenUser(stack, 0), { method });
      attempts.push((await stack.app.store.getAttempt(outTradeNo))!);
    }
    return attempts;
  }
  /** Every one of them at its +2 min query. */
  const queryDueOf = (attempts: Attempt[]) => Math.max(...attempts.map((attempt) => Date.parse(attempt.createdAt))) + 2 * MINUTE + 1_000;
  /** The gateways, recorded, with the calls of `channels` held until `ms` have passed: longer than the run's budget. */
  function holding(channels: Channel[], ms: number, calls: Call[]) {
    const held = new Promise((resolve) => setTimeout(resolve, ms));
    return beforeEachCall(recording(calls), async (channel) => {
      if (channels.includes(channel)) await held;
    });
  }
  const trades = (calls: Call[], channel: Channel) => calls.filter((call) => call.channel === channel).map((call) => call.outTradeNo);
  const ids = (attempts: Attempt[]) => attempts.map((attempt) => attempt.outTradeNo);

  it('holds up only its own attempts: the Alipay ones due behind WeChat attempts that hang are checked in the same run, WeChat ones past what its lane holds left due', async () => {
    const wechat = await unpaidAttempts(1, 5);
    const alipay = await unpaidAttempts(2, 2);
    const at = queryDueOf([...wechat, ...alipay]);
    const dueBefore = await dueOf(wechat[4].outTradeNo);
    // The group's one shard, in due order: five WeChat attempts, then the two Alipay ones.
    const store = storeWith(stack, { findDueAttempts: async () => ({ attempts: [...wechat, ...alipay] }) });
    const calls: Call[] = [];
    const { result: report, lines } = await captureOutput(() =>
      sweep(
        { store, gateways: holding(['wechat'], 2_500, calls), now: () => new Date(at) },
        { ...DEFAULT_SWEEP, groups: DUE_SHARDS, concurrency: 2, queueLimit: 2, budgetMs: 2_000 },
        1,
      ),
    );
    // The line says which channel is behind: the one whose gateway hangs.
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'sweep ran out of time with attempts still due', group: 1, channels_behind: 'wechat' }),
    );
    expect(trades(calls, 'alipay').sort()).toEqual(ids(alipay).sort());
    expect(trades(calls, 'wechat')).toEqual(ids(wechat.slice(0, 2)));
    // Two of each channel checked; two WeChat attempts waiting when the time ran out, the fifth skipped.
    expect(report).toMatchObject({ checked: 4, rescheduled: 4, failed: 0, behind: 1 });
    for (const attempt of alipay) expect(await dueOf(attempt.outTradeNo)).toBe(await queryTime(attempt.outTradeNo, 1));
    expect(await dueOf(wechat[4].outTradeNo)).toBe(dueBefore);
  });

  it('one channel with more due attempts than its lane holds, its gateway answering: the ones skipped are read again, all checked in the run, none left', async () => {
    const wechat = await unpaidAttempts(1, 7);
    const mine = new Set(ids(wechat));
    // The due index as it is (a checked attempt is due again later), of these attempts alone.
    const store = storeWith(stack, {
      findDueAttempts: async (...args) => {
        const page = await stack.app.store.findDueAttempts(...args);
        return { ...page, attempts: page.attempts.filter((attempt) => mine.has(attempt.outTradeNo)) };
      },
      findDueRefunds: async () => [],
      findLegacyIndexed: async () => [],
    });
    const calls: Call[] = [];
    const report = await sweep(
      { store, gateways: recording(calls), now: () => new Date(queryDueOf(wechat)) },
      { ...DEFAULT_SWEEP, groups: 1, concurrency: 2, queueLimit: 2 },
      0,
    );
    expect(report).toMatchObject({ checked: 7, rescheduled: 7, failed: 0, behind: 0 });
    expect(trades(calls, 'wechat').sort()).toEqual([...mine].sort());
  });

  it('reads ahead only while a lane wants more: with both channels hanging, a due set of many pages is read no further than both lanes can hold', async () => {
    const wechat = await unpaidAttempts(1, 5);
    const alipay = await unpaidAttempts(2, 5);
    const at = queryDueOf([...wechat, ...alipay]);
    let reads = 0;
    // Pages without end, each one attempt of each channel (five of each, round and round: an attempt
    // read again is passed over, so a reader that never stopped would read on until its time is up).
    const store = storeWith(stack, {
      findDueAttempts: async () => {
        const i = reads++ % 5;
        return { attempts: [wechat[i], alipay[i]], after: 'more' };
      },
    });
    const concurrency = 2;
    const report = await sweep(
      { store, gateways: holding(['wechat', 'alipay'], 2_500, []), now: () => new Date(at) },
      { ...DEFAULT_SWEEP, groups: DUE_SHARDS, concurrency, budgetMs: 2_000 },
      1,
    );
    // A lane holds what it runs at once and as many again waiting: one attempt of each lane a page.
    expect(reads).toBeLessThanOrEqual(2 * concurrency);
    expect(report).toMatchObject({ checked: 2 * concurrency, behind: 1 });
  });
});

describe('CallRateLimiter', () => {
  /** Virtual time: a sleeper wakes when the clock reaches its time, and the clock only moves to the next sleeper. */
  function virtualTime() {
    let now = 0;
    const sleepers: { at: number; wake: () => void }[] = [];
    return {
      now: () => now,
      sleep: (ms: number) => new Promise<void>((wake) => sleepers.push({ at: now + ms, wake })),
      /** Moves the clock from sleeper to sleeper until `work` settles. */
      async run<T>(work: Promise<T>): Promise<T> {
        let finished = false;
        const settled = work.finally(() => {
          finished = true;
        });
        while (!finished) {
          await new Promise((resolve) => setImmediate(resolve));
          sleepers.sort((a, b) => a.at - b.at);
          const next = sleepers.shift();
          if (!next) continue;
          now = Math.max(now, next.at);
          next.wake();
        }
        return settled;
      },
    };
  }
  /** The most of `times` (ms) that fall within any one second. */
  const mostInOneSecond = (times: number[]) => Math.max(...times.map((at) => times.filter((other) => other >= at && other < at + 1000).length));

  it('lets at most N calls start within any one second, however many wait', async () => {
    const time = virtualTime();
    const limiter = new CallRateLimiter(5, time.now, time.sleep);
    const starts: number[] = [];
    await time.run(
      Promise.all(
        Array.from({ length: 23 }, async () => {
          await limiter.take();
          starts.push(time.now());
        }),
      ),
    );
    expect(starts).toHaveLength(23);
    expect(mostInOneSecond(starts)).toBeLessThanOrEqual(5);
    // And no slower than that: 23 calls at 5 a second all start within 4 seconds.
    expect(Math.max(...starts)).toBe(4000);
  });

  it('paces calls from when the gateway can send them: calls held by its wait (a secret refresh) do not go out together when it ends', async () => {
    const time = virtualTime();
    // The gateway waits 2.5 s before it can send anything (as the app's does while its secret is read again).
    const readyAt = time.sleep(2_500);
    const sent: number[] = [];
    const wechat = {
      ...stack.app.gateways.wechat,
      ready: () => readyAt,
      queryTrade: async () => {
        await readyAt;
        sent.push(time.now());
        return { state: 'unpaid' as const };
      },
    };
    const gateways = rateLimited(
      { ...stack.app.gateways, wechat },
      { wechat: new CallRateLimiter(2, time.now, time.sleep), alipay: new CallRateLimiter(2, time.now, time.sleep) },
      { wechat: 0, alipay: 0 },
    );
    await time.run(Promise.all(Array.from({ length: 6 }, (_, i) => gateways.wechat.queryTrade(`T${i}`))));
    expect(sent).toHaveLength(6);
    expect(mostInOneSecond(sent)).toBeLessThanOrEqual(2);
  });

  it('refuses a cap below one call a second', () => {
    expect(() => new CallRateLimiter(0)).toThrow(new RangeError('perSecond must be a positive integer, got 0'));
    expect(() => new CallRateLimiter(2.5)).toThrow(new RangeError('perSecond must be a positive integer, got 2.5'));
  });

  it("the app's gateways say when they can send (ready), and asking is not a call", async () => {
    const calls = { wechat: 0, alipay: 0 };
    const wrapped = rateLimited(stack.app.gateways, { wechat: new CallRateLimiter(1), alipay: new CallRateLimiter(1) }, calls);
    expect(stack.app.gateways.wechat.ready).toEqual(expect.any(Function));
    expect(stack.app.gateways.alipay.ready).toEqual(expect.any(Function));
    await wrapped.wechat.ready?.();
    await wrapped.alipay.ready?.();
    expect(calls).toEqual({ wechat: 0, alipay: 0 });
  });

  it("the gateways' properties read through the wrapper are the gateways' own, not calls", () => {
    const wrapped = beforeEachCall(stack.app.gateways, () => undefined);
    expect(wrapped.wechat.channel).toBe('wechat');
    expect(wrapped.alipay.channel).toBe('alipay');
  });
});

describe('attempts written before the due index (partitions OPEN and WATCH)', () => {
  async function toLegacy(outTradeNo: string, partition: 'OPEN' | 'WATCH', expiresAt: string) {
    await state.placeInIndex(outTradeNo, { gsi1pk: partition, gsi1sk: `${expiresAt}#${outTradeNo}` });
  }

  /** Group 0 of one-shard groups: the move of the old partitions, and shard 0 only. */
  const moveAt = (at: number, over: Partial<CompletePaymentDeps> = {}) =>
    sweep({ store: stack.app.store, gateways: stack.app.gateways, now: () => new Date(at), ...over }, { ...DEFAULT_SWEEP, groups: DUE_SHARDS }, 0);

  it('one done with (paid) but left in an old partition leaves the index: read again every run, a page of them would stop the move', async () => {
    const { outTradeNo } = await paidAttempt();
    await toLegacy(outTradeNo, 'OPEN', String((await state.attempt(outTradeNo))?.expires_at));
    // Nothing else is in the old partitions at this point of the file: exactly this one moves.
    expect((await moveAt(Date.now())).migrated).toBe(1);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
    expect((await stack.app.store.findLegacyIndexed(100)).map((attempt) => attempt.outTradeNo)).not.toContain(outTradeNo);
  });

  it('one another worker moved first is not counted as moved', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    await toLegacy(outTradeNo, 'OPEN', String((await state.attempt(outTradeNo))?.expires_at));
    const store = storeWith(stack, { moveToDueIndex: async () => false, unwatchAttempt: async () => false });
    expect(await moveAt(Date.now(), { store })).toMatchObject({ migrated: 0 });
    expect(await state.attempt(outTradeNo)).toMatchObject({ gsi1pk: 'OPEN' });
    expect((await moveAt(Date.now())).migrated).toBe(1);
    expect(await state.attempt(outTradeNo)).toMatchObject({ gsi1pk: expect.stringMatching(/^DUE#/) });
  });

  it('are moved to their due shard by group 0 and swept from there; reconcile accepts both', async () => {
    const open = await givenUser(stack, 1000);
    const created = Date.now();
    const legacyOpen = await pay(stack, open, { method: 4, points: 800, priceFen: 8000 });
    const watched = await givenUser(stack, 0);
    const superseded = await pay(stack, watched, { method: 2 });
    await pay(stack, watched, { method: 1 });
    const expiresAt = String((await state.attempt(legacyOpen.outTradeNo))?.expires_at);
    const supersededExpiresAt = String((await state.attempt(superseded.outTradeNo))?.expires_at);
    await toLegacy(legacyOpen.outTradeNo, 'OPEN', expiresAt);
    await toLegacy(superseded.outTradeNo, 'WATCH', supersededExpiresAt);
    expect((await stack.reconcile()).problems).toEqual([]);

    const report = await sweepAt(created, 3 * MINUTE, [], {}, { groups: 1 });
    expect(report.migrated).toBeGreaterThanOrEqual(2);
    // The open one is due at its next query (+9), the watched one 5 minutes after its expiry.
    expect(await state.attempt(legacyOpen.outTradeNo)).toMatchObject({ gsi1pk: expect.stringMatching(/^DUE#/) });
    expect(await dueOf(legacyOpen.outTradeNo)).toBe(await queryTime(legacyOpen.outTradeNo, 1));
    expect(await state.attempt(superseded.outTradeNo)).toMatchObject({ gsi1pk: expect.stringMatching(/^DUE#/) });
    expect(await dueOf(superseded.outTradeNo)).toBe(new Date(Date.parse(supersededExpiresAt) + 5 * MINUTE).toISOString());
    expect((await stack.reconcile()).problems).toEqual([]);

    // From there on, swept like any other: released at its expiry.
    const calls: Call[] = [];
    await sweepAt(Date.parse(expiresAt), 1_000, calls);
    expect(await state.attempt(legacyOpen.outTradeNo)).toMatchObject({ status: 'expired' });
    expect(of(calls, legacyOpen.outTradeNo)).toEqual(['closeTrade']);
  });
});

describe('a run out of time with attempts still due', () => {
  it('counts itself behind and names its group; a run that reached every due attempt is not', async () => {
    const user = await givenUser(stack, 0);
    const { outTradeNo } = await pay(stack, user, { method: 1 });
    const created = await createdOf(outTradeNo);
    // The lease takes longer than the run's whole budget: no time is left for the attempt due.
    const slowLease = storeWith(stack, {
      claimSweepLease: async (...args) => {
        await new Promise((resolve) => setTimeout(resolve, 150));
        return stack.app.store.claimSweepLease(...args);
      },
    });
    const deps = { store: ownOnly(outTradeNo, slowLease), gateways: stack.app.gateways, now: () => new Date(created + 2 * MINUTE + 1_000) };
    const options = { ...DEFAULT_SWEEP, groups: DUE_SHARDS };
    const group = dueShard(outTradeNo);
    const { result: late, lines } = await captureOutput(() => sweep(deps, { ...options, budgetMs: 100 }, group));
    expect(late).toMatchObject({ checked: 0, behind: 1 });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'sweep ran out of time with attempts still due', group }));
    expect(await sweep(deps, options, group)).toMatchObject({ checked: 1, rescheduled: 1, behind: 0 });
  });
});
