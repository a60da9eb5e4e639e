import { type DeliveryAttempt, EVENT_SHARDS, type EventTarget, nextDeliveryAt, type OutboxEvent } from '../domain/events';
import type { Clock } from '../domain/time';
import { log } from '../log';
import type { DeliveryRecord, OutboxStore } from '../store/payStore';
import type { EventSink } from './eventSink';

export interface DispatchDeps {
  store: OutboxStore;
  /** The configured targets; an event is delivered once every one of them took it. */
  sinks: EventSink[];
  now: Clock;
}

export interface DispatchSettings {
  /** Due events taken per shard and run (events waiting for their retry are read past, not counted). */
  perShard: number;
  /** No delivery round starts after this instant (the function's time runs out). */
  deadline: number;
  /**
   * Events sent per round, recorded before the next round starts: small enough that a round of
   * endpoints that never answer (8 at a time, 5 s each) ends well within the time kept back.
   */
  roundSize?: number;
  /** The shards this run delivers (its group's, `eventShardsOf`); every shard when left out. */
  shards?: readonly number[];
}

export const DEFAULT_EVENTS_PER_SHARD = 50;
export const DEFAULT_ROUND_SIZE = 16;
/**
 * A run reads on past where a read stopped only once that point is this old. An event is stamped before
 * its write commits and the index shows it a moment after: an earlier event of an order may still appear
 * behind a younger cursor, and the order's later event, read on past it, would go first. The next run
 * reads from the start again.
 */
export const READ_ON_AFTER_MS = 10_000;
/**
 * An event goes only once it is this old; a younger one waits for the next run, and its order's later
 * events with it. For the same reason: an order's earlier event, committed a moment before, may not be in
 * the index yet, and its later one, read alone, would go first (a second payment a second after the
 * first: `payment.refund_required` before `order.paid`). AWS gives an index a second to show a write
 * (docs/references.md); 5 s covers that with room, and costs an event 5 s more on its way on average.
 */
export const SETTLE_MS = 5_000;
/** At most this many undelivered events are read per shard and read, due or not; a run reads on while its time lasts. */
const MAX_READ_PER_SHARD = 1_000;

/** Attempts that failed this many times in a row mean the endpoint is down, not a blip: that alarms. */
export const FAILING_AFTER_ATTEMPTS = 5;

export interface DispatchReport {
  delivered: number;
  /** Failed this time, tried again later. */
  retrying: number;
  /** Failed again after FAILING_AFTER_ATTEMPTS attempts or more: the endpoint is down (alarms); tried again later. */
  failing: number;
  /** Failed for the last time: a person decides (redeliver). */
  dead: number;
  /** Not due yet, or waiting behind an earlier event of the same order. */
  waiting: number;
  /** Delivered, but another delivery recorded itself first (a redelivery by hand). */
  raced: number;
}

/**
 * Delivers the undelivered events that are due, at least once each. One order's events go in the
 * order they happened: a later one waits until the earlier one is delivered (or dead). Orders go in
 * rounds: each round sends the next event of every order whose previous one went through. While its
 * time lasts, a run reads on in each shard that had more pages than it read, from where its read
 * stopped: no event is read twice in a run, so none is sent twice in it either.
 */
export async function dispatchEvents(deps: DispatchDeps, settings: DispatchSettings): Promise<DispatchReport> {
  const report: DispatchReport = { delivered: 0, retrying: 0, dead: 0, failing: 0, waiting: 0, raced: 0 };
  if (deps.sinks.length === 0) return report;
  const roundSize = settings.roundSize ?? DEFAULT_ROUND_SIZE;
  // Orders with an event left undelivered in this run (not due, failed): their later events, read
  // further on, wait behind it.
  const held = new Set<number>();
  // Where each shard's next read starts; a shard read to its end is done with for this run.
  let reading = new Map<number, string | undefined>(
    (settings.shards ?? Array.from({ length: EVENT_SHARDS }, (_, shard) => shard)).map((shard) => [shard, undefined]),
  );
  while (reading.size > 0) {
    const now = deps.now().toISOString();
    const reads = await Promise.all(
      [...reading].map(async ([shard, after]) => ({ shard, ...(await readShard(deps.store, shard, { due: settings.perShard, now, after, held })) })),
    );
    await deliverRounds(deps, byOrder(reads.flatMap((read) => read.events)), { now, deadline: settings.deadline, roundSize, held }, report);
    if (deps.now().getTime() >= settings.deadline) break;
    // Aged at the read, not now: what the read could not see yet behind its cursor stays unseen however
    // long the rounds took since.
    const readOnBefore = new Date(Date.parse(now) - READ_ON_AFTER_MS).toISOString();
    // The cursor is the last sort key read, `<created_at>#<id>`.
    reading = new Map(reads.flatMap((read) => (read.more && read.more < readOnBefore ? [[read.shard, read.more] as const] : [])));
  }
  return report;
}

async function deliverRounds(
  deps: DispatchDeps,
  queues: Map<number, OutboxEvent[]>,
  run: { now: string; deadline: number; roundSize: number; held: Set<number> },
  report: DispatchReport,
): Promise<void> {
  const hold = (orderId: number, queue: OutboxEvent[]) => {
    report.waiting += queue.length;
    run.held.add(orderId);
    queues.delete(orderId);
  };
  while (queues.size > 0 && deps.now().getTime() < run.deadline) {
    const heads: OutboxEvent[] = [];
    for (const [orderId, queue] of queues) {
      const head = queue[0] as OutboxEvent;
      if (run.held.has(orderId) || !isDue(head, run.now)) hold(orderId, queue);
      else if (heads.length < run.roundSize) heads.push(head);
    }
    if (heads.length === 0) break;
    const outcomes = await deliver(deps, heads);
    for (const [i, head] of heads.entries()) {
      const outcome = outcomes[i] as Outcome;
      report[outcome]++;
      const orderId = head.event.data.order_id;
      const queue = queues.get(orderId) as OutboxEvent[];
      queue.shift();
      // The order's next event goes only once this one is settled for good (delivered, or dead).
      if (outcome !== 'delivered' && outcome !== 'dead') hold(orderId, queue);
      else if (queue.length === 0) queues.delete(orderId);
    }
  }
  for (const [orderId, queue] of queues) hold(orderId, queue);
}

/**
 * Sends one event again at once, to every target, whatever its state (the shop lost it, or it is dead
 * and the endpoint is fixed). Delivered stays delivered; a dead one that went through is delivered.
 * With no target configured nothing is sent or recorded (no `result`): "every target took it" would be
 * true of none, and the event would leave the outbox unsent.
 */
export async function redeliverEvent(deps: DispatchDeps, eventId: string): Promise<{ event?: OutboxEvent; result?: DeliveryAttempt }> {
  const event = await deps.store.getEvent(eventId);
  if (!event || deps.sinks.length === 0) return { event };
  const [attempt] = await sendToTargets(deps, [event], deps.sinks);
  const tookIt = deps.sinks.filter((sink) => attempt?.results[sink.target] === 'ok').map((sink) => sink.target);
  const deliveredTo = union(event.deliveredTo, tookIt);
  const allTook = deps.sinks.every((sink) => deliveredTo.includes(sink.target));
  const now = deps.now();
  const record: DeliveryRecord =
    allTook || event.status !== 'pending'
      ? { attempt: attempt as DeliveryAttempt, deliveredTo, status: allTook ? 'delivered' : event.status }
      : failed(event, attempt as DeliveryAttempt, deliveredTo, now);
  await deps.store.recordDelivery(event, record, now.toISOString());
  return { event: (await deps.store.getEvent(eventId)) ?? event, result: attempt };
}

type Outcome = 'delivered' | 'retrying' | 'failing' | 'dead' | 'raced';

/** Settled in the index (SETTLE_MS old) and not waiting for a retry. */
function isDue(event: OutboxEvent, now: string): boolean {
  if (Date.parse(event.event.created_at) > Date.parse(now) - SETTLE_MS) return false;
  return event.nextAttemptAt === undefined || event.nextAttemptAt <= now;
}

/**
 * A shard's undelivered events, oldest first from `after`, read page by page until `due` orders have a
 * due event first in line: events waiting for a retry (an endpoint refusing some, a backlog after an
 * outage) are read past instead of holding up the newer ones behind them. An order `held` earlier in
 * the run has no due event first in line. `more`: where to read on, when it stopped with pages left
 * (at `due`, or after MAX_READ_PER_SHARD events: a backlog bigger than that is read past a read at a time).
 */
async function readShard(
  store: OutboxStore,
  shard: number,
  read: { due: number; now: string; after?: string; held: ReadonlySet<number> },
): Promise<{ events: OutboxEvent[]; more?: string }> {
  const events: OutboxEvent[] = [];
  const seen = new Set<number>(read.held);
  let dueHeads = 0;
  let after = read.after;
  do {
    const page = await store.findPendingEvents(shard, 100, after);
    for (const event of page.events) {
      events.push(event);
      const orderId = event.event.data.order_id;
      if (seen.has(orderId)) continue;
      seen.add(orderId); // the order's first event decides for the order's later ones
      if (isDue(event, read.now)) dueHeads++;
    }
    after = page.after;
  } while (after !== undefined && dueHeads < read.due && events.length < MAX_READ_PER_SHARD);
  return { events, more: after };
}

async function deliver(deps: DispatchDeps, events: OutboxEvent[]): Promise<Outcome[]> {
  const attempts = await sendToTargets(deps, events, deps.sinks, (event, sink) => !event.deliveredTo.includes(sink.target));
  const now = deps.now();
  return Promise.all(
    events.map(async (event, i) => {
      const attempt = attempts[i] as DeliveryAttempt;
      const deliveredTo = union(
        event.deliveredTo,
        deps.sinks.filter((sink) => attempt.results[sink.target] === 'ok').map((sink) => sink.target),
      );
      const allTook = deps.sinks.every((sink) => deliveredTo.includes(sink.target));
      const record = allTook ? { attempt, deliveredTo, status: 'delivered' as const } : failed(event, attempt, deliveredTo, now);
      try {
        if (!(await deps.store.recordDelivery(event, record, now.toISOString()))) return 'raced';
      } catch (error) {
        // Not recorded: it is still pending as it was and goes again next run (at least once).
        log.error('event delivery not recorded', { event_id: event.event.id, order_id: event.event.data.order_id }, error);
        return 'retrying';
      }
      if (record.status === 'delivered') return 'delivered';
      if (record.status === 'dead') {
        log.error('event delivery gave up: a person must redeliver it', { event_id: event.event.id, order_id: event.event.data.order_id, ...attempt.results });
        return 'dead';
      }
      log.warn('event delivery failed, tried again later', { event_id: event.event.id, attempts: event.attempts + 1, ...attempt.results });
      return event.attempts + 1 >= FAILING_AFTER_ATTEMPTS ? 'failing' : 'retrying';
    }),
  );
}

/** Each sink takes the events it should (all at once, so EventBridge can batch them); one attempt per event. */
async function sendToTargets(
  deps: DispatchDeps,
  events: OutboxEvent[],
  sinks: EventSink[],
  wants: (event: OutboxEvent, sink: EventSink) => boolean = () => true,
): Promise<DeliveryAttempt[]> {
  const at = deps.now().toISOString();
  const attempts: DeliveryAttempt[] = events.map(() => ({ at, results: {} }));
  await Promise.all(
    sinks.map(async (sink) => {
      const indexes = events.flatMap((event, i) => (wants(event, sink) ? [i] : []));
      if (indexes.length === 0) return;
      const results = await sink.send(indexes.map((i) => events[i] as OutboxEvent)).catch((error: Error) => indexes.map(() => error.name));
      indexes.forEach((eventIndex, j) => {
        (attempts[eventIndex] as DeliveryAttempt).results[sink.target] = results[j] ?? 'no result';
      });
    }),
  );
  return attempts;
}

function failed(event: OutboxEvent, attempt: DeliveryAttempt, deliveredTo: EventTarget[], now: Date): DeliveryRecord {
  const nextAttemptAt = nextDeliveryAt(event.attempts + 1, now);
  return nextAttemptAt ? { attempt, deliveredTo, status: 'pending', nextAttemptAt } : { attempt, deliveredTo, status: 'dead' };
}

function byOrder(events: OutboxEvent[]): Map<number, OutboxEvent[]> {
  const queues = new Map<number, OutboxEvent[]>();
  for (const event of events) {
    const queue = queues.get(event.event.data.order_id);
    if (queue) queue.push(event);
    else queues.set(event.event.data.order_id, [event]);
  }
  return queues;
}

function union(a: EventTarget[], b: EventTarget[]): EventTarget[] {
  return [...new Set([...a, ...b])];
}
