/**
 * runInLanes on items of its own, read from a due set as the sweeping reads the due index: an item that
 * ran is no longer due, one skipped still is. What a full lane skips and reads again, what the time
 * leaves, and what a failed read or a failed item leaves running.
 */
import { type LaneOptions, runInLanes } from '../../../lib/pay/lanes';

interface Item {
  name: string;
  lane: string;
  ms: number;
}

const item = (name: string, ms = 0): Item => ({ name, lane: name[0], ms });
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The items still due, read in order as the due index is: each reading sees what has not run yet. */
function dueSet(items: Item[], failure?: Error) {
  const due = new Set(items);
  let readings = 0;
  return {
    read: () => {
      readings++;
      return (async function* () {
        yield* [...due];
        if (failure) throw failure;
      })();
    },
    done: (it: Item) => due.delete(it),
    readings: () => readings,
  };
}

const options: LaneOptions<Item> = {
  laneOf: (it) => it.lane,
  keyOf: (it) => it.name,
  lanes: ['a', 'b'],
  concurrency: 1,
  queueLimit: 1,
  timeLeft: () => true,
};

/** Runs `items`, each taking its `ms`, recording the order they end in. */
async function runAll(items: Item[], over: Partial<LaneOptions<Item>> = {}) {
  const source = dueSet(items);
  const ended: string[] = [];
  const result = await runInLanes(source.read, { ...options, ...over }, async (it) => {
    await pause(it.ms);
    source.done(it);
    ended.push(it.name);
  });
  return { result, ended, readings: source.readings() };
}

describe('runInLanes', () => {
  it('a slow lane holds up only its own: the other lane is read past its full queue and runs first', async () => {
    const { result, ended } = await runAll([item('a0', 100), item('a1'), item('a2'), item('a3'), item('b0')]);
    expect(ended[0]).toBe('b0');
    expect(ended.indexOf('b0')).toBeLessThan(ended.indexOf('a0'));
    expect(ended.sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'b0']);
    expect(result.left).toBe(false);
  });

  it('one lane with all the work and the other idle: the items skipped at its full queue are read again once it has room, every one run once, in time', async () => {
    const items = Array.from({ length: 30 }, (_, i) => item(`a${i}`, 2));
    const { result, ended, readings } = await runAll(items, { concurrency: 2, queueLimit: 5 });
    expect(ended.sort()).toEqual(items.map((it) => it.name).sort());
    expect(result.left).toBe(false);
    expect(readings).toBeGreaterThan(1);
  });

  it('an item read again while it waits or runs, or after it ran but is still due, runs once', async () => {
    // Every reading yields every item: as an index would whose items' writes all failed.
    const items = [item('a0', 20), item('a1'), item('a2'), item('b0')];
    const ran: string[] = [];
    const result = await runInLanes(
      () =>
        (async function* () {
          yield* items;
        })(),
      options,
      async (it) => {
        await pause(it.ms);
        ran.push(it.name);
      },
    );
    expect(ran.sort()).toEqual(['a0', 'a1', 'a2', 'b0']);
    expect(result.left).toBe(false);
  });

  it('out of time: what waits or was skipped is left, and said so', async () => {
    let timeLeft = true;
    setTimeout(() => (timeLeft = false), 30);
    const { result, ended } = await runAll([item('a0', 60), item('a1'), item('a2'), item('b0')], { timeLeft: () => timeLeft });
    expect(ended.sort()).toEqual(['a0', 'b0']);
    expect(result).toEqual({ left: true, behind: ['a'] });
  });

  it('no lane known up front: each opens at its first item', async () => {
    const { result, ended } = await runAll([item('a0'), item('b0'), item('a1')], { lanes: [], queueLimit: 2 });
    expect(ended.sort()).toEqual(['a0', 'a1', 'b0']);
    expect(result).toEqual({ left: false, behind: [] });
  });

  it('a lane whose worker ended takes up its next item: an item read after its lane went idle runs', async () => {
    const ran: string[] = [];
    const result = await runInLanes(
      () =>
        (async function* () {
          yield item('a0');
          await pause(20);
          yield item('a1');
        })(),
      options,
      async (it) => {
        ran.push(it.name);
      },
    );
    expect(ran).toEqual(['a0', 'a1']);
    expect(result).toEqual({ left: false, behind: [] });
  });

  it('an item skipped at its full lane is the reason to read again: exactly at the limit, not one past it', async () => {
    // a1 fills lane a (limit 1), so a2 is skipped and read on a second reading, once a0 has ended.
    const { ended, readings } = await runAll([item('a0', 20), item('a1'), item('a2')]);
    expect(ended).toEqual(['a0', 'a1', 'a2']);
    expect(readings).toBe(2);
  });

  it('read again as soon as any lane that skipped has room, not only once all have', async () => {
    let timeLeft = true;
    setTimeout(() => (timeLeft = false), 100);
    // Both lanes skip their third item (an idle lane c keeps the reading going); lane a is held past the
    // time, lane b has room at once.
    const { ended } = await runAll([item('a0', 150), item('a1'), item('a2'), item('b0'), item('b1'), item('b2')], {
      lanes: ['a', 'b', 'c'],
      timeLeft: () => timeLeft,
    });
    expect(ended).toEqual(['b0', 'b1', 'b2', 'a0']);
  });

  it('out of time with items waiting but none skipped: their lane is behind', async () => {
    const { result, ended } = await runAll([item('a0', 40), item('a1')], { queueLimit: 2 });
    expect({ result, ended }).toEqual({ result: { left: false, behind: [] }, ended: ['a0', 'a1'] });
    let timeLeft = true;
    setTimeout(() => (timeLeft = false), 20);
    const late = await runAll([item('a0', 40), item('a1')], { queueLimit: 2, timeLeft: () => timeLeft });
    expect(late).toMatchObject({ result: { left: true, behind: ['a'] }, ended: ['a0'] });
  });

  it('no time at all: nothing runs, and the source, asked once, says there is work left', async () => {
    const { result, ended, readings } = await runAll([item('a0')], { timeLeft: () => false });
    expect({ result, ended, readings }).toEqual({ result: { left: true, behind: [] }, ended: [], readings: 1 });
    const idle = await runAll([], { timeLeft: () => false });
    expect(idle.result).toEqual({ left: false, behind: [] });
  });

  it('reached everything: nothing left', async () => {
    const { result, ended, readings } = await runAll([item('a0'), item('b0'), item('a1')], { queueLimit: 2 });
    expect(ended.sort()).toEqual(['a0', 'a1', 'b0']);
    expect(result).toEqual({ left: false, behind: [] });
    expect(readings).toBe(1);
  });

  it('a failed read: the items read already run to their end, then the error is thrown', async () => {
    const source = dueSet([item('a0', 50), item('b0', 50)], new Error('read failed'));
    const ended: string[] = [];
    const run = runInLanes(source.read, options, async (it) => {
      await pause(it.ms);
      ended.push(it.name);
    });
    await expect(run).rejects.toThrow('read failed');
    expect(ended.sort()).toEqual(['a0', 'b0']);
  });

  it('an item that throws: the items in flight end, no other starts, and its error is thrown, handled, without a hang', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // a1 waits and a2 is skipped behind a0, b1 waits behind b0; a0 fails while the reader waits for room.
      const source = dueSet([item('a0', 20), item('a1'), item('a2'), item('b0', 50), item('b1')]);
      const started: string[] = [];
      const ended: string[] = [];
      const run = runInLanes(source.read, options, async (it) => {
        started.push(it.name);
        await pause(it.ms);
        if (it.name === 'a0') throw new Error('a0 failed');
        ended.push(it.name);
      });
      await expect(run).rejects.toThrow('a0 failed');
      expect(started).toEqual(['a0', 'b0']);
      expect(ended).toEqual(['b0']);
      await pause(10);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an item that throws while the reader waits for room: nothing more is read or started', async () => {
    // Only lane a is known up front: with a0 running and a1 waiting, the reader waits before it reads b0.
    const source = dueSet([item('a0', 20), item('a1'), item('b0')]);
    const started: string[] = [];
    const run = runInLanes(source.read, { ...options, lanes: ['a'] }, async (it) => {
      started.push(it.name);
      await pause(it.ms);
      if (it.name === 'a0') throw new Error('a0 failed');
    });
    await expect(run).rejects.toThrow('a0 failed');
    expect(started).toEqual(['a0']);
  });

  it('out of time after what waited has started, before what was skipped is read again: left, and said so', async () => {
    const started: string[] = [];
    const source = dueSet([item('a0', 10), item('a1', 10), item('a2')]);
    const result = await runInLanes(
      source.read,
      // The time runs out as a1, which waited, starts: the skipped a2 is never read again.
      { ...options, timeLeft: () => !started.includes('a1') },
      async (it) => {
        started.push(it.name);
        await pause(it.ms);
        source.done(it);
      },
    );
    expect(started).toEqual(['a0', 'a1']);
    expect(result).toEqual({ left: true, behind: ['a'] });
  });

  it('refuses a queue limit below what a lane runs at once: a full lane would be read again and again', async () => {
    await expect(runInLanes(dueSet([]).read, { ...options, concurrency: 2, queueLimit: 1 }, async () => {})).rejects.toThrow(
      new RangeError('queueLimit 1 is below concurrency 2'),
    );
  });
});
