export interface LaneOptions<T> {
  /** The lane an item runs in (the sweeping's: its gateway channel). */
  laneOf(item: T): string;
  /** What makes two items read the same one: an item read again is not run twice in a run. */
  keyOf(item: T): string;
  /**
   * Lanes that want items before any has come: the source is read past a full lane to find theirs.
   * Other lanes open at their first item.
   */
  lanes: readonly string[];
  /** Items run at once in each lane. */
  concurrency: number;
  /** Items a lane may hold waiting; the source's further items for it are skipped, and read again later. */
  queueLimit: number;
  /** False once no new item may start (the run's time is up). */
  timeLeft(): boolean;
}

export interface LanesResult {
  /** Items not reached: queued or skipped when the time ran out, or still in the source. */
  left: boolean;
  /** The lanes that had items queued or skipped when the time ran out (of those still in the source, none is known). */
  behind: string[];
}

interface Lane<T> {
  queue: T[];
  running: number;
}

/**
 * Runs the items the source reads in lanes of `concurrency` each, so that a lane whose items are slow
 * (a gateway that hangs, or one held at its call cap) holds up only its own. The source is read ahead
 * while any lane wants more (holds fewer than it runs at once), past a full lane, whose further items
 * are skipped; once the source is done and a lane that skipped some has room again, it is read again
 * from the start (`read` makes a new reading; an item already taken in this run is passed over). The
 * sweeping's source is the due index: what ran is no longer due, what was skipped still is.
 *
 * A failed read, or an item's run that throws, ends the reading: the items in flight end first, then
 * the error is thrown.
 */
export async function runInLanes<T>(read: () => AsyncIterator<T>, options: LaneOptions<T>, run: (item: T) => Promise<void>): Promise<LanesResult> {
  // A lane at its limit must have room to run more before it is read again, or the reading would go round.
  if (options.queueLimit < options.concurrency) throw new RangeError(`queueLimit ${options.queueLimit} is below concurrency ${options.concurrency}`);
  const lanes = new Map<string, Lane<T>>(options.lanes.map((name) => [name, { queue: [], running: 0 }]));
  const workers: Promise<void>[] = [];
  const taken = new Set<string>();
  let skippedBy = new Set<Lane<T>>();
  let failure: { error: unknown } | undefined;
  let wakeReader: (() => void) | undefined;
  const wake = () => {
    wakeReader?.();
    wakeReader = undefined;
  };
  const hasRoom = (lane: Lane<T>) => lane.queue.length < options.concurrency;
  /** Waits until `ready` holds, the time is up, or an item failed. */
  const readerWaits = async (ready: () => boolean) => {
    while (options.timeLeft() && !failure && !ready()) await new Promise<void>((resolve) => (wakeReader = resolve));
  };

  const work = async (lane: Lane<T>) => {
    lane.running++;
    try {
      for (let item = lane.queue.shift(); item !== undefined; item = lane.queue.shift()) {
        wake();
        await run(item);
        if (failure || !options.timeLeft()) return;
      }
    } catch (error) {
      failure ??= { error };
    } finally {
      lane.running--;
      wake();
    }
  };

  let source = read();
  let sourceDone = false;
  try {
    for (;;) {
      await readerWaits(() => lanes.size === 0 || [...lanes.values()].some(hasRoom));
      if (!options.timeLeft() || failure) break;
      const next = await source.next();
      if (next.done) {
        if (skippedBy.size === 0) {
          sourceDone = true;
          break;
        }
        await readerWaits(() => [...skippedBy].some(hasRoom));
        if (!options.timeLeft() || failure) break;
        skippedBy = new Set();
        source = read();
        continue;
      }
      const key = options.keyOf(next.value);
      if (taken.has(key)) continue;
      const name = options.laneOf(next.value);
      const lane = lanes.get(name) ?? { queue: [], running: 0 };
      lanes.set(name, lane);
      if (lane.queue.length >= options.queueLimit) {
        skippedBy.add(lane);
        continue;
      }
      taken.add(key);
      lane.queue.push(next.value);
      if (lane.running < options.concurrency) workers.push(work(lane));
    }
  } catch (error) {
    await Promise.all(workers);
    throw error;
  }
  await Promise.all(workers);
  if (failure) throw failure.error;
  const behind = [...lanes].filter(([, lane]) => lane.queue.length > 0 || skippedBy.has(lane)).map(([name]) => name);
  // Out of time before the source said it was done: asking reads at most one more page; what it finds waits.
  return { left: behind.length > 0 || (!sourceDone && !(await source.next()).done), behind };
}
