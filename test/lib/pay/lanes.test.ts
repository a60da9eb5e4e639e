/** runInLanes on items of its own: what a full lane skips, and what a failed read leaves running. */
import { runInLanes } from '../../../lib/pay/lanes';

interface Item {
  name: string;
  lane: string;
  ms: number;
}

async function* itemsThen(items: Item[], failure?: Error): AsyncGenerator<Item> {
  yield* items;
  if (failure) throw failure;
}

const item = (name: string, ms = 0): Item => ({ name, lane: name[0], ms });
const options = { laneOf: (it: Item) => it.lane, lanes: ['a', 'b'], concurrency: 1, queueLimit: 1, timeLeft: () => true };

describe('runInLanes', () => {
  it('skips the items read past a full lane, says some were left, and goes on reading for the other lane', async () => {
    const ran: string[] = [];
    const result = await runInLanes(itemsThen([item('a0', 50), item('a1'), item('a2'), item('b0')]), options, async (it) => {
      await new Promise((resolve) => setTimeout(resolve, it.ms));
      ran.push(it.name);
    });
    // a0 runs, a1 waits (the lane holds one), a2 is skipped even though the time would have allowed it.
    expect(ran.sort()).toEqual(['a0', 'a1', 'b0']);
    expect(result.left).toBe(true);
  });

  it('reached everything: nothing left', async () => {
    const ran: string[] = [];
    const result = await runInLanes(itemsThen([item('a0'), item('b0'), item('a1')]), { ...options, queueLimit: 2 }, async (it) => {
      ran.push(it.name);
    });
    expect(ran.sort()).toEqual(['a0', 'a1', 'b0']);
    expect(result.left).toBe(false);
  });

  it('a failed read: the items read already run to their end, then the error is thrown', async () => {
    const ended: string[] = [];
    const run = runInLanes(itemsThen([item('a0', 50), item('b0', 50)], new Error('read failed')), options, async (it) => {
      await new Promise((resolve) => setTimeout(resolve, it.ms));
      ended.push(it.name);
    });
    await expect(run).rejects.toThrow('read failed');
    expect(ended.sort()).toEqual(['a0', 'b0']);
  });
});
