export interface LaneOptions<T> {
  /** The lane an item runs in (the sweeping's: its gateway channel). */
  laneOf(item: T): string;
  /**
   * Lanes that want items before any has come: the source is read past a full lane to find theirs.
   * Other lanes open at their first item.
   */
  lanes: readonly string[];
  /** Items run at once in each lane. */
  concurrency: number;
  /** Items a lane may hold waiting; the source's further items for it are skipped, left for a later run. */
  queueLimit: number;
  /** False once no new item may start (the run's time is up). */
  timeLeft(): boolean;
}

export interface LanesResult {
  /** Items not reached: queued when the time ran out, skipped at a full lane, or still in the source. */
  left: boolean;
}

interface Lane<T> {
  queue: T[];
  running: number;
}

/**
 * Runs the source's items in lanes of `concurrency` each, so that a lane whose items are slow (a gateway
 * that hangs, or one held at its call cap) holds up only its own: the source is read ahead while any lane
 * wants more (holds fewer than it runs at once), past a full lane, whose further items are skipped.
 * Nothing is lost by a skip: a skipped item is still in its source for the next run. Read ahead of a lane
 * that is slow while another has nothing, the source is read to its end (a run's pages, once).
 * A failed read of the source ends the reading: the items read already run (in the time left), then the
 * error is thrown.
 */
export async function runInLanes<T>(source: AsyncIterator<T>, options: LaneOptions<T>, run: (item: T) => Promise<void>): Promise<LanesResult> {
  const lanes = new Map<string, Lane<T>>(options.lanes.map((name) => [name, { queue: [], running: 0 }]));
  const workers: Promise<void>[] = [];
  let skipped = false;
  let wakeReader: (() => void) | undefined;
  const wake = () => {
    wakeReader?.();
    wakeReader = undefined;
  };
  const wantsMore = () => lanes.size === 0 || [...lanes.values()].some((lane) => lane.queue.length < options.concurrency);

  const work = async (lane: Lane<T>) => {
    lane.running++;
    try {
      for (let item = lane.queue.shift(); item !== undefined; item = lane.queue.shift()) {
        wake();
        await run(item);
        if (!options.timeLeft()) return;
      }
    } finally {
      lane.running--;
      wake();
    }
  };

  let sourceDone = false;
  try {
    while (options.timeLeft()) {
      while (options.timeLeft() && !wantsMore()) await new Promise<void>((resolve) => (wakeReader = resolve));
      if (!options.timeLeft()) break;
      const next = await source.next();
      if (next.done) {
        sourceDone = true;
        break;
      }
      const name = options.laneOf(next.value);
      const lane = lanes.get(name) ?? { queue: [], running: 0 };
      lanes.set(name, lane);
      if (lane.queue.length >= options.queueLimit) {
        skipped = true;
        continue;
      }
      lane.queue.push(next.value);
      if (lane.running < options.concurrency) workers.push(work(lane));
    }
  } catch (error) {
    await allEnded(workers);
    throw error;
  }
  await allEnded(workers);
  const queued = [...lanes.values()].some((lane) => lane.queue.length > 0);
  // Out of time before the source said it was done: asking reads at most one more page; what it finds waits.
  return { left: skipped || queued || (!sourceDone && !(await source.next()).done) };
}

/** Waits for every promise to settle, then throws the first rejection: none is left running behind an error. */
async function allEnded(promises: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}
