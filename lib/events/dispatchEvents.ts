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
/** At most this many undelivered events are read per shard and run, due or not. */
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
 * time lasts, a run reads the shards again as long as one of them had more due events than it took.
 */
export async function dispatchEvents(deps: DispatchDeps, settings: DispatchSettings): Promise<DispatchReport> {
  const report: DispatchReport = { delivered: 0, retrying: 0, dead: 0, failing: 0, waiting: 0, raced: 0 };
  if (deps.sinks.length === 0) return report;
  const roundSize = settings.roundSize ?? DEFAULT_ROUND_SIZE;
  const shards = settings.shards ?? Array.from({ length: EVENT_SHARDS }, (_, shard) => shard);
  // What this run did with each event: the index is read eventually consistent, so a later read may
  // still show an event as it was. One settled is not sent again; one that failed waits for its retry.
  const sentThisRun = new Map<string, Outcome>();
  for (;;) {
    const now = deps.now().toISOString();
    const reads = await Promise.all(shards.map((shard) => readShard(deps.store, shard, settings.perShard, now, sentThisRun)));
    const queues = byOrder(reads.flatMap((read) => read.events));
    // Counted again by each read: what the last one left is what waits.
    report.waiting = 0;
    await deliverRounds(deps, queues, { now, deadline: settings.deadline, roundSize, sentThisRun }, report);
    if (!reads.some((read) => read.more) || deps.now().getTime() >= settings.deadline) return report;
  }
}

async function deliverRounds(
  deps: DispatchDeps,
  queues: Map<number, OutboxEvent[]>,
  run: { now: string; deadline: number; roundSize: number; sentThisRun: Map<string, Outcome> },
  report: DispatchReport,
): Promise<void> {
  const due = (event: OutboxEvent) => isDue(event, run.now) && !run.sentThisRun.has(event.event.id);
  while (queues.size > 0 && deps.now().getTime() < run.deadline) {
    const heads: OutboxEvent[] = [];
    for (const [orderId, queue] of queues) {
      const head = queue[0] as OutboxEvent;
      if (!due(head)) {
        report.waiting += queue.length;
        queues.delete(orderId);
      } else if (heads.length < run.roundSize) heads.push(head);
    }
    if (heads.length === 0) break;
    const outcomes = await deliver(deps, heads);
    for (const [i, head] of heads.entries()) {
      const outcome = outcomes[i] as Outcome;
      report[outcome]++;
      run.sentThisRun.set(head.event.id, outcome);
      const orderId = head.event.data.order_id;
      const queue = queues.get(orderId) as OutboxEvent[];
      queue.shift();
      // The order's next event goes only once this one is settled for good (delivered, or dead).
      if (!isSettled(outcome)) report.waiting += queue.length;
      if (!isSettled(outcome) || queue.length === 0) queues.delete(orderId);
    }
  }
  for (const queue of queues.values()) report.waiting += queue.length;
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

function isDue(event: OutboxEvent, now: string): boolean {
  return event.nextAttemptAt === undefined || event.nextAttemptAt <= now;
}

function isSettled(outcome: Outcome): boolean {
  return outcome === 'delivered' || outcome === 'dead';
}

/**
 * A shard's undelivered events, oldest first, read page by page until `due` orders have a due event
 * first in line: events waiting for a retry (an endpoint refusing some, a backlog after an outage) are
 * read past instead of holding up the newer ones behind them. `more`: it stopped at `due`, with pages
 * left. An event settled earlier in the run is left out; one that failed earlier in it is no due head.
 */
async function readShard(
  store: OutboxStore,
  shard: number,
  due: number,
  now: string,
  sentThisRun: ReadonlyMap<string, Outcome>,
): Promise<{ events: OutboxEvent[]; more: boolean }> {
  const events: OutboxEvent[] = [];
  const blocked = new Set<number>();
  let dueHeads = 0;
  let after: string | undefined;
  do {
    const page = await store.findPendingEvents(shard, 100, after);
    for (const event of page.events) {
      const earlier = sentThisRun.get(event.event.id);
      if (earlier && isSettled(earlier)) continue;
      events.push(event);
      const orderId = event.event.data.order_id;
      if (blocked.has(orderId)) continue;
      blocked.add(orderId); // the order's first event decides for the order's later ones
      if (isDue(event, now) && !earlier) dueHeads++;
    }
    after = page.after;
  } while (after !== undefined && dueHeads < due && events.length < MAX_READ_PER_SHARD);
  return { events, more: after !== undefined && dueHeads >= due };
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
