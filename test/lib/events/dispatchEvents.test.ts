import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { EventTarget } from '../../../lib/domain/events';
import { MAX_DELIVERY_ATTEMPTS, type OutboxEvent, orderClosedEvent } from '../../../lib/domain/events';
import { type DispatchDeps, type DispatchSettings, dispatchEvents, redeliverEvent, SETTLE_MS } from '../../../lib/events/dispatchEvents';
import type { EventSink, SendResult } from '../../../lib/events/eventSink';
import { eventItem } from '../../../lib/store/items';
import { keys, outboxSortKey } from '../../../lib/store/keys';
import { captureOutput } from '../../support/logs';
import { expectBalancedBooksThenClose, startTestStack, TABLE, type TestStack } from '../../support/stack';
import { storeWith } from '../../support/world';

/**
 * dispatchEvents decision by decision, on a fixed clock, over outboxes written item by item into the
 * real local table (the items `eventItem` writes): what a run sends, holds back, counts and records,
 * how far it reads a shard, and what a redelivery by hand records.
 */
let stack: TestStack;
let db: TestStack['db'];
beforeAll(async () => {
  stack = await startTestStack();
  db = stack.db;
});
afterAll(() => expectBalancedBooksThenClose(stack));

const NOW = Date.parse('2026-11-29T08:00:00.000Z');
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const MINUTE = 60_000;

let written: string[] = [];
afterEach(async () => {
  await deleteEvents(written);
  written = [];
});

interface GivenEvent {
  orderId: number;
  /** Its place in the order's outbox and in the shard (by creation time). */
  seq?: number;
  attempts?: number;
  /** Not tried again before this; due when left out. */
  nextAttemptAt?: string;
  status?: 'pending' | 'delivered';
  deliveredTo?: EventTarget[];
}

/** Writes pending events as the store writes them, created a minute before NOW plus `seq` ms. */
async function given(...events: GivenEvent[]): Promise<string[]> {
  const items = events.map(({ orderId, seq = 0, attempts = 0, nextAttemptAt, status = 'pending', deliveredTo = [] }) => {
    const event = { ...orderClosedEvent({ orderId, userId: 1 }, undefined, at(-MINUTE + seq)), id: `evt_test_${orderId}_${seq}` };
    const item: Record<string, unknown> = {
      ...eventItem(event),
      attempts,
      status,
      delivered_to: deliveredTo,
      next_attempt_at: nextAttemptAt ?? event.created_at,
    };
    if (status !== 'pending') {
      delete item.gsi1pk;
      delete item.gsi1sk;
    }
    return item;
  });
  for (let i = 0; i < items.length; i += 25) {
    await db.send(new BatchWriteCommand({ RequestItems: { [TABLE]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
  }
  const ids = items.map((item) => item.event_id as string);
  written.push(...ids);
  return ids;
}

async function deleteEvents(ids: string[]) {
  for (let i = 0; i < ids.length; i += 25) {
    const batch = ids.slice(i, i + 25).map((id) => ({ DeleteRequest: { Key: keys.event(id) } }));
    await db.send(new BatchWriteCommand({ RequestItems: { [TABLE]: batch } }));
  }
}

/** A target that answers each event with `answer` and keeps what it was sent, call by call. */
function recordingSink(answer: SendResult | ((event: OutboxEvent) => SendResult) = 'ok', target: EventTarget = 'webhook') {
  const calls: string[][] = [];
  const sink: EventSink = {
    target,
    send: async (events) => {
      calls.push(events.map((e) => e.event.id));
      return events.map((e) => (typeof answer === 'function' ? answer(e) : answer));
    },
  };
  return { sink, calls, sent: () => calls.flat() };
}

const deps = (sinks: EventSink[], over: Partial<DispatchDeps> = {}): DispatchDeps => ({
  store: stack.app.store,
  sinks,
  now: () => new Date(NOW),
  ...over,
});
const settings = (over: Partial<DispatchSettings> = {}): DispatchSettings => ({ perShard: 50, deadline: NOW + MINUTE, ...over });
const stored = (id: string) => stack.app.store.getEvent(id);
const NOTHING = { delivered: 0, retrying: 0, failing: 0, dead: 0, waiting: 0, raced: 0 };

/** The stack's store, each read of the outbox recorded: its shard and how many events it found. */
function recordingReads() {
  const reads: { shard: number; found: number }[] = [];
  const store = storeWith(stack, {
    findPendingEvents: async (shard, ...rest) => {
      const page = await stack.app.store.findPendingEvents(shard, ...rest);
      reads.push({ shard, found: page.events.length });
      return page;
    },
  });
  return { store, reads, foundInShard0: () => reads.filter((read) => read.shard === 0).map((read) => read.found) };
}

describe('a run', () => {
  it('with no target configured sends nothing and records nothing: the events wait in the outbox', async () => {
    const [id] = await given({ orderId: 1 });
    expect(await dispatchEvents(deps([]), settings())).toEqual(NOTHING);
    expect(await stored(id as string)).toMatchObject({ status: 'pending', attempts: 0, deliveries: [] });
  });

  it('with no target configured a redelivery by hand sends and records nothing either: the event is not taken for delivered', async () => {
    const [id] = await given({ orderId: 1 });
    const { event, result } = await redeliverEvent(deps([]), id as string);
    expect(result).toBeUndefined();
    expect(event).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await stored(id as string)).toMatchObject({ status: 'pending', attempts: 0, deliveries: [] });
  });

  it('whose deadline has come starts no round: every event is counted waiting', async () => {
    await given({ orderId: 1 }, { orderId: 2 }, { orderId: 2, seq: 1 });
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink]), settings({ deadline: NOW }))).toEqual({ ...NOTHING, waiting: 3 });
    expect(shop.calls).toEqual([]);
  });

  it('holds back an event waiting for its retry, counted waiting; due again at its retry time exactly', async () => {
    const [id] = await given({ orderId: 1, attempts: 1, nextAttemptAt: at(MINUTE) });
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, waiting: 1 });
    expect(shop.calls).toEqual([]);
    expect(await dispatchEvents(deps([shop.sink], { now: () => new Date(NOW + MINUTE) }), settings({ deadline: NOW + 2 * MINUTE }))).toEqual({
      ...NOTHING,
      delivered: 1,
    });
    expect(shop.sent()).toEqual([id]);
  });

  it('sends an event once it is SETTLE_MS old, to the millisecond; a younger one waits for a later run, counted waiting', async () => {
    const [settled, young] = await given({ orderId: 1, seq: MINUTE - SETTLE_MS }, { orderId: 2, seq: MINUTE - SETTLE_MS + 1 });
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, delivered: 1, waiting: 1 });
    expect(shop.sent()).toEqual([settled]);
    expect(await stored(young as string)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await dispatchEvents(deps([shop.sink], { now: () => new Date(NOW + 1) }), settings())).toEqual({ ...NOTHING, delivered: 1 });
    expect(shop.sent()).toEqual([settled, young]);
  });

  it("never sends an order's event before an earlier one the index does not show yet (written a moment before it)", async () => {
    const [earlier, later] = await given({ orderId: 1, seq: MINUTE - 3_000 }, { orderId: 1, seq: MINUTE - 2_000 });
    // The index's lag: the earlier event's write is not in it yet at the first run.
    let lagging = true;
    const store = storeWith(stack, {
      findPendingEvents: async (...args) => {
        const page = await stack.app.store.findPendingEvents(...args);
        return lagging ? { ...page, events: page.events.filter((e) => e.event.id !== earlier) } : page;
      },
    });
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings())).toEqual({ ...NOTHING, waiting: 1 });
    expect(shop.calls).toEqual([]);
    lagging = false;
    const next = { store, now: () => new Date(NOW + MINUTE) };
    expect(await dispatchEvents(deps([shop.sink], next), settings({ deadline: NOW + 2 * MINUTE }))).toEqual({ ...NOTHING, delivered: 2 });
    expect(shop.calls).toEqual([[earlier], [later]]);
  });

  it("sends an order's next event in the next round once the one before it is delivered", async () => {
    const ids = await given({ orderId: 1 }, { orderId: 1, seq: 1 }, { orderId: 1, seq: 2 });
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, delivered: 3 });
    expect(shop.calls).toEqual(ids.map((id) => [id]));
  });

  it("sends an order's next event once the one before it failed for the last time (dead: a person takes over)", async () => {
    const [dead, next] = await given({ orderId: 1, attempts: MAX_DELIVERY_ATTEMPTS - 1 }, { orderId: 1, seq: 1 });
    const shop = recordingSink((e) => (e.event.id === dead ? 'http 500' : 'ok'));
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, dead: 1, delivered: 1 });
    expect(shop.calls).toEqual([[dead], [next]]);
  });

  it("holds an order's later events behind one that failed, counted waiting", async () => {
    const [first] = await given({ orderId: 1 }, { orderId: 1, seq: 1 }, { orderId: 1, seq: 2 });
    const shop = recordingSink('http 500');
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, retrying: 1, waiting: 2 });
    expect(shop.calls).toEqual([[first]]);
  });

  it('counts a failure retrying, and from the 5th failure in a row failing (the endpoint is down)', async () => {
    await given({ orderId: 1 }, { orderId: 2, attempts: 3 }, { orderId: 3, attempts: 4 }, { orderId: 4, attempts: 5 });
    const shop = recordingSink('http 500');
    expect(await dispatchEvents(deps([shop.sink]), settings())).toEqual({ ...NOTHING, retrying: 2, failing: 2 });
  });

  it("logs each failure with its attempt and every target's answer, the last one as an error for a person", async () => {
    const [retried, dead] = await given({ orderId: 1, attempts: 2 }, { orderId: 2, attempts: MAX_DELIVERY_ATTEMPTS - 1 });
    const shop = recordingSink('http 500');
    const { result, lines } = await captureOutput(() => dispatchEvents(deps([shop.sink]), settings()));
    expect(result).toEqual({ ...NOTHING, retrying: 1, dead: 1 });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'event delivery failed, tried again later', event_id: retried, attempts: 3, webhook: 'http 500' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'event delivery gave up: a person must redeliver it',
        event_id: dead,
        order_id: 2,
        webhook: 'http 500',
      }),
    );
    expect(await stored(dead as string)).toMatchObject({ status: 'dead', attempts: MAX_DELIVERY_ATTEMPTS });
  });

  it('a delivery it cannot record is logged as an error and counted retrying: it stays pending and goes again', async () => {
    const [id] = await given({ orderId: 7 });
    const store = storeWith(stack, { recordDelivery: () => Promise.reject(Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' })) });
    const { result, lines } = await captureOutput(() => dispatchEvents(deps([recordingSink().sink], { store }), settings()));
    expect(result).toEqual({ ...NOTHING, retrying: 1 });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'event delivery not recorded',
        event_id: id,
        order_id: 7,
        error: expect.objectContaining({ code: 'ECONNRESET' }),
      }),
    );
    expect(await stored(id as string)).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it("records a target that threw as that error's name for every event it took", async () => {
    const [a, b] = await given({ orderId: 1 }, { orderId: 2 });
    const throwing: EventSink = {
      target: 'eventbridge',
      send: () => Promise.reject(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' })),
    };
    expect(await dispatchEvents(deps([throwing]), settings())).toEqual({ ...NOTHING, retrying: 2 });
    for (const id of [a, b]) {
      expect(await stored(id as string)).toMatchObject({ status: 'pending', attempts: 1, deliveries: [{ results: { eventbridge: 'TimeoutError' } }] });
    }
  });

  it('records an event a target gave no answer for as failed: "no result"', async () => {
    const [a, b] = await given({ orderId: 1 }, { orderId: 2 });
    const short: EventSink = { target: 'webhook', send: async () => ['ok'] };
    expect(await dispatchEvents(deps([short]), settings())).toEqual({ ...NOTHING, delivered: 1, retrying: 1 });
    expect((await stored(a as string))?.status).toBe('delivered');
    expect(await stored(b as string)).toMatchObject({ status: 'pending', deliveries: [{ results: { webhook: 'no result' } }] });
  });

  it('does not call a target again for an event it already took', async () => {
    const [id] = await given({ orderId: 1, attempts: 1, deliveredTo: ['webhook'] });
    const webhook = recordingSink('ok', 'webhook');
    const bus = recordingSink('ok', 'eventbridge');
    expect(await dispatchEvents(deps([webhook.sink, bus.sink]), settings())).toEqual({ ...NOTHING, delivered: 1 });
    expect(webhook.calls).toEqual([]);
    expect(bus.calls).toEqual([[id]]);
  });
});

describe('how far a run reads a shard (pages of 100, orders 16 apart share a shard)', () => {
  const inShard0 = (n: number) => Array.from({ length: n }, (_, i) => 16 * (i + 1));
  /**
   * Written 7 s ago, one millisecond apart: settled enough to go (5 s), too young for the run to read on
   * from (10 s), so what is found past the first page is found by the one read itself.
   */
  const young = (i: number) => MINUTE - 7_000 + i;

  it('no further than the pages that hold the due events it wants; then again, while its time lasts, until none is left behind', async () => {
    const ids = await given(...inShard0(150).map((orderId, seq) => ({ orderId, seq })));
    const shop = recordingSink();
    const log: string[] = [];
    const store = storeWith(stack, {
      findPendingEvents: async (shard, limit, after) => {
        const page = await stack.app.store.findPendingEvents(shard, limit, after);
        if (shard === 0) log.push(`read ${page.events.length}`);
        return page;
      },
    });
    const sink: EventSink = {
      target: 'webhook',
      send: async (events) => {
        log.push(`send ${events.length}`);
        return shop.sink.send(events);
      },
    };
    expect(await dispatchEvents(deps([sink], { store }), settings({ perShard: 100 }))).toEqual({ ...NOTHING, delivered: 150 });
    // The first read stops at the page that holds 100 due events; the second finds the 50 left, and reads no more.
    expect(log.filter((line) => line.startsWith('read'))).toEqual(['read 100', 'read 50']);
    expect(log.indexOf('read 50')).toBeGreaterThan(log.indexOf('send 16'));
    expect(shop.sent().sort()).toEqual([...ids].sort());
  });

  it('reads on only past a point 10 s old or more: an earlier event of an order written just before may still appear behind a younger one', async () => {
    // 101 events of different orders in shard 0, written 7 s ago: a first read of 100 (all due), then no more.
    await given(...inShard0(101).map((orderId, i) => ({ orderId, seq: young(i) })));
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, delivered: 100 });
    expect(foundInShard0()).toEqual([100]);
  });

  it('ages that point at the read, not after the rounds: rounds that took 20 s do not make a point 7 s old at the read one to read on from', async () => {
    await given(...inShard0(101).map((orderId, i) => ({ orderId, seq: young(i) })));
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    let sending = false;
    const slow: EventSink = {
      target: 'webhook',
      send: async (events) => {
        sending = true;
        return shop.sink.send(events);
      },
    };
    const clock = { now: () => new Date(sending ? NOW + 20_000 : NOW) };
    expect(await dispatchEvents(deps([slow], { store, ...clock }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, delivered: 100 });
    expect(foundInShard0()).toEqual([100]);
  });

  it('reads again only while a shard had more due events than it took: a run whose reads all fit reads once', async () => {
    await given(...inShard0(30).map((orderId, seq) => ({ orderId, seq })));
    const shop = recordingSink();
    const { store, reads } = recordingReads();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 50 }))).toEqual({ ...NOTHING, delivered: 30 });
    expect(reads).toHaveLength(16);
  });

  it('reads on from where its read stopped, never from the top again: an order held behind a failure earlier in the run keeps its later events back', async () => {
    const [failing, other, later, last] = await given({ orderId: 16, seq: 0 }, { orderId: 32, seq: 1 }, { orderId: 16, seq: 2 }, { orderId: 48, seq: 3 });
    // Shard 0 in two pages: the first two events, then the other two. A read from the top again would
    // find the first page as it was (the index is read eventually consistent): its events still pending.
    const staleCopies = new Map((await stack.app.store.findPendingEvents(0, 100)).events.map((e) => [e.event.id, e]));
    const firstPageEnd = outboxSortKey((staleCopies.get(other) as OutboxEvent).event);
    const readsFrom: (string | undefined)[] = [];
    const store = storeWith(stack, {
      findPendingEvents: async (shard, limit, after) => {
        const all = await stack.app.store.findPendingEvents(shard, limit);
        if (shard !== 0) return all;
        readsFrom.push(after);
        const mine = (ids: string[]) => ids.map((id) => all.events.find((e) => e.event.id === id) ?? (staleCopies.get(id) as OutboxEvent));
        return after ? { events: mine([later, last]) } : { events: mine([failing, other]), after: firstPageEnd };
      },
    });
    const shop = recordingSink((event) => (event.event.id === failing ? 'HTTP 500' : 'ok'));
    const report = await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }));
    expect(readsFrom).toEqual([undefined, firstPageEnd]);
    expect(shop.sent()).toEqual([failing, other, last]);
    expect(report).toEqual({ ...NOTHING, delivered: 2, retrying: 1, waiting: 1 });
    expect(await stored(later)).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it('past a full page of events waiting for their retry, to the due one behind them, in one read', async () => {
    const waiting = inShard0(100).map((orderId, i) => ({ orderId, seq: young(i), attempts: 1, nextAttemptAt: at(MINUTE) }));
    const [due] = (await given(...waiting, { orderId: 16 * 101, seq: young(100) })).slice(-1);
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, delivered: 1, waiting: 100 });
    expect(shop.sent()).toEqual([due]);
    expect(foundInShard0()).toEqual([100, 1]);
  });

  it('past the later events of an order whose first event waits (they are not due heads), in one read', async () => {
    const held = Array.from({ length: 100 }, (_, i) => ({ orderId: 16, seq: young(i + 1) }));
    const [due] = (await given({ orderId: 16, seq: young(0), attempts: 1, nextAttemptAt: at(MINUTE) }, ...held, { orderId: 32, seq: young(101) })).slice(-1);
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, delivered: 1, waiting: 101 });
    expect(shop.sent()).toEqual([due]);
    expect(foundInShard0()).toEqual([100, 2]);
  });

  it('past 1,000 waiting events too, 1,000 a read: a due event behind them goes in the same run', async () => {
    const waiting = inShard0(1_000).map((orderId, seq) => ({ orderId, seq, attempts: 1, nextAttemptAt: at(MINUTE) }));
    const [due] = (await given(...waiting, { orderId: 16 * 1_001, seq: 1_000 })).slice(-1);
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, delivered: 1, waiting: 1_000 });
    expect(shop.sent()).toEqual([due]);
    // A first read of ten pages of 100 (1,000 events, none due), then a second that reads on to the due one.
    expect(foundInShard0()).toEqual([...Array.from({ length: 10 }, () => 100), 1]);
  });

  it('no further than 1,000 events a read: behind 1,000 young waiting ones, a due one waits for a later run', async () => {
    const waiting = inShard0(1_000).map((orderId, i) => ({ orderId, seq: young(i), attempts: 1, nextAttemptAt: at(MINUTE) }));
    const [due] = (await given(...waiting, { orderId: 16 * 1_001, seq: young(1_000) })).slice(-1);
    const { store, foundInShard0 } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ perShard: 1 }))).toEqual({ ...NOTHING, waiting: 1_000 });
    expect(shop.sent()).toEqual([]);
    expect(foundInShard0()).toEqual(Array.from({ length: 10 }, () => 100));
    expect(await stored(due as string)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});

describe('a redelivery by hand', () => {
  it('of a pending event that one of two targets refuses: still pending, its attempt counted, its retry scheduled', async () => {
    const [id] = await given({ orderId: 1 });
    const webhook = recordingSink('ok', 'webhook');
    const bus = recordingSink('ThrottlingException', 'eventbridge');
    const { event } = await redeliverEvent(deps([webhook.sink, bus.sink]), id as string);
    expect(event).toMatchObject({ status: 'pending', attempts: 1, deliveredTo: ['webhook'], nextAttemptAt: at(MINUTE) });
  });

  it('of a pending event that every target takes: delivered', async () => {
    const [id] = await given({ orderId: 1, attempts: 2 });
    const { event } = await redeliverEvent(deps([recordingSink().sink]), id as string);
    expect(event).toMatchObject({ status: 'delivered', attempts: 3, deliveredTo: ['webhook'] });
    expect(event?.nextAttemptAt).toBeUndefined();
  });

  it('of a delivered event while the targets fail, one of them configured since: stays delivered, the attempt recorded', async () => {
    const [id] = await given({ orderId: 1, attempts: 1, status: 'delivered', deliveredTo: ['webhook'] });
    const webhook = recordingSink('http 503', 'webhook');
    const bus = recordingSink('ThrottlingException', 'eventbridge');
    const { event, result } = await redeliverEvent(deps([webhook.sink, bus.sink]), id as string);
    expect(result?.results).toEqual({ webhook: 'http 503', eventbridge: 'ThrottlingException' });
    expect(event).toMatchObject({ status: 'delivered', attempts: 2, deliveredTo: ['webhook'] });
    expect(event?.nextAttemptAt).toBeUndefined();
  });
});

describe('a run of one dispatch group', () => {
  it("reads and delivers its group's shards only: another group's events wait for their own run", async () => {
    const [mine, theirs] = await given({ orderId: 16 * 7 + 1, seq: 0 }, { orderId: 16 * 7 + 2, seq: 1 });
    const { store, reads } = recordingReads();
    const shop = recordingSink();
    expect(await dispatchEvents(deps([shop.sink], { store }), settings({ shards: [1, 5, 9, 13] }))).toEqual({ ...NOTHING, delivered: 1 });
    expect([...new Set(reads.map((read) => read.shard))].sort((a, b) => a - b)).toEqual([1, 5, 9, 13]);
    expect(shop.sent()).toEqual([mine]);
    expect(await stored(theirs)).toMatchObject({ status: 'pending' });
  });
});
