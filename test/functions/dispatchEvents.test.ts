import { SETTLE_MS } from '../../lib/events/dispatchEvents';
import { runDeadline } from '../../lib/events/dispatcherHandler';
import { runShopCommand } from '../../lib/shop/shopCommands';
import { localWebhookSecret } from '../../scripts/local/environment';
import { type EventReceiver, startEventReceiver } from '../../scripts/local/eventReceiver';
import { captureOutput, metricLines } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { givenUser } from '../support/world';

/**
 * The dispatchEvents function as its schedule and an operator invoke it: a run's report, metrics and
 * log line; the operator's list and redelivery; and a malformed operator request refused.
 */
let stack: TestStack;
let receiver: EventReceiver;
let handler: (event: unknown, context: unknown) => Promise<Record<string, unknown>>;
let app: typeof import('../../functions/dispatchEvents/handler')['app'];

beforeAll(async () => {
  stack = await startTestStack();
  receiver = await startEventReceiver({ secret: localWebhookSecret(stack.credentials) });
  Object.assign(process.env, stack.env, { SHOP_WEBHOOK_URL: receiver.url });
  ({ handler, app } = (await import('../../functions/dispatchEvents/handler')) as never);
  // Each run comes once what the test just wrote may go (SETTLE_MS old), as the schedule's next run would.
  app.now = () => new Date(Date.now() + SETTLE_MS);
});
afterAll(() => expectBalancedBooksThenClose(stack, () => receiver.close()));

/** What EventBridge's schedule sends: no `action`. */
const SCHEDULED = { version: '0', id: 'run', 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };
const context = (remainingMs: number) => ({ awsRequestId: 'run', functionName: 'dispatchEvents', getRemainingTimeInMillis: () => remainingMs });
const invoke = (event: unknown, remainingMs = 55_000) => handler(event, context(remainingMs));

/** An order closed by the shop: one `order.closed` event, pending. */
async function closedOrderEvent(): Promise<string> {
  const user = await givenUser(stack, 0);
  await runShopCommand(stack.app, { command: 'close-order', order_id: user.orderId });
  return `evt_order_closed_${user.orderId}`;
}
const receivedOf = (id: string) => receiver.received.filter((e) => e.id === id);

describe('a scheduled run', () => {
  it('delivers the due events, counts each outcome that happened as a metric, and logs its report', async () => {
    const id = await closedOrderEvent();
    const { result: report, lines } = await captureOutput(() => invoke(SCHEDULED));
    expect(report).toEqual({ delivered: 1, retrying: 0, failing: 0, dead: 0, waiting: 0, raced: 0 });
    expect(receivedOf(id)).toHaveLength(1);
    expect(metricLines(lines, 'EventDelivery').map((line) => [line.outcome, line.EventDelivery])).toEqual([['delivered', 1]]);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'events dispatched', delivered: 1, waiting: 0 }));
  });

  it("stops starting rounds once the function's remaining time, less the reserve, is spent: the event waits for the next run", async () => {
    const id = await closedOrderEvent();
    const now = app.now;
    let reads = 0;
    // 30 s given, so rounds may start for 15 s; the run's clock is read again 20 s on.
    app.now = () => new Date(Date.now() + SETTLE_MS + (reads++ === 0 ? 0 : 20_000));
    try {
      expect(await invoke(SCHEDULED, 30_000)).toMatchObject({ delivered: 0, waiting: 1 });
    } finally {
      app.now = now;
    }
    expect(receivedOf(id)).toHaveLength(0);
    expect(await invoke(SCHEDULED)).toMatchObject({ delivered: 1 });
  });

  it('run for one group (`{"group": n}`, the input of its schedule) reads the shards of that group only (group 0 too); without one, every shard; one the stage does not have, or below 0, none', async () => {
    const reads: number[] = [];
    const store = app.store;
    const findPendingEvents = store.findPendingEvents.bind(store);
    const spy = jest.spyOn(store, 'findPendingEvents').mockImplementation(async (shard, ...rest) => {
      reads.push(shard);
      return findPendingEvents(shard, ...rest);
    });
    const groups = app.config.dispatch.groups;
    try {
      (app.config.dispatch as { groups: number }).groups = 4;
      await invoke({ ...SCHEDULED, group: 1 });
      expect([...new Set(reads)].sort((a, b) => a - b)).toEqual([1, 5, 9, 13]);
      reads.length = 0;
      // Group 0 is a group (a stage with one group has only it).
      await invoke({ ...SCHEDULED, group: 0 });
      expect([...new Set(reads)].sort((a, b) => a - b)).toEqual([0, 4, 8, 12]);
      reads.length = 0;
      // Below 0 is none: nothing read, and a warning.
      const below = await captureOutput(() => invoke({ ...SCHEDULED, group: -1 }));
      expect(reads).toEqual([]);
      expect(below.lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'dispatch group not of this stage: nothing sent', group: '-1' }));
      await invoke(SCHEDULED);
      expect([...new Set(reads)].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, shard) => shard));
      reads.length = 0;
      // A group the stage does not have (a schedule of before dispatchGroups was lowered): nothing, and a warning.
      const { result, lines } = await captureOutput(() => invoke({ ...SCHEDULED, group: 4 }));
      expect(result).toEqual({ delivered: 0, retrying: 0, failing: 0, dead: 0, waiting: 0, raced: 0 });
      expect(reads).toEqual([]);
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 'WARN', message: 'dispatch group not of this stage: nothing sent', group: '4', groups: 4 }),
      );
    } finally {
      (app.config.dispatch as { groups: number }).groups = groups;
      spy.mockRestore();
    }
  });

  it('invoked without the remaining time (a local invoke) runs on the default time', async () => {
    const id = await closedOrderEvent();
    expect(await handler(SCHEDULED, { awsRequestId: 'local', functionName: 'dispatchEvents' })).toMatchObject({ delivered: 1 });
    expect(receivedOf(id)).toHaveLength(1);
    const next = await closedOrderEvent(); // and with no context at all: middy hands the handler an empty one
    expect(await handler(SCHEDULED, undefined)).toMatchObject({ delivered: 1 });
    expect(receivedOf(next)).toHaveLength(1);
  });
});

describe('runDeadline', () => {
  it('keeps 12 s back from a full run, half of a short one, nothing of none', () => {
    expect(runDeadline(1_000_000, 55_000)).toBe(1_043_000);
    expect(runDeadline(1_000_000, 10_000)).toBe(1_005_000);
    expect(runDeadline(1_000_000, 0)).toBe(1_000_000);
  });
});

describe('an operator', () => {
  it('lists the undelivered events with their attempts and next try', async () => {
    const id = await closedOrderEvent();
    const { events } = (await invoke({ action: 'list' })) as { events: Record<string, unknown>[] };
    expect(events).toContainEqual(expect.objectContaining({ id, type: 'order.closed', status: 'pending', attempts: 0, delivered_to: [], last_attempt: null }));
    await invoke(SCHEDULED); // delivered, out of the list
    const after = (await invoke({ action: 'list' })) as { events: Record<string, unknown>[] };
    expect(after.events.map((e) => e.id)).not.toContain(id);
  });

  it('redelivers one event at once, logged; an unknown one is named as not found', async () => {
    const id = await closedOrderEvent();
    const { result, lines } = await captureOutput(() => invoke({ action: 'redeliver', event_id: id }));
    expect(result).toMatchObject({ event: { id, status: 'delivered', attempts: 1, delivered_to: ['webhook'] }, result: { results: { webhook: 'ok' } } });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'event redelivered', event_id: id, status: 'delivered' }));
    expect(receivedOf(id)).toHaveLength(1);

    expect(await invoke({ action: 'redeliver', event_id: 'evt_order_paid_nope' })).toEqual({
      error: 'EVENT_NOT_FOUND',
      message: '没有这个事件: evt_order_paid_nope',
    });
  });

  it('a redelivery with no target configured is refused NO_TARGET, the event left pending in the outbox, not taken for delivered', async () => {
    const id = await closedOrderEvent();
    const events = app.config.events;
    app.config.events = { webhookUrl: undefined, busName: undefined };
    try {
      expect(await invoke({ action: 'redeliver', event_id: id })).toEqual({
        error: 'NO_TARGET',
        message: '未配置事件目标(SHOP_WEBHOOK_URL 或 EVENT_BUS_NAME),事件未发送',
      });
    } finally {
      app.config.events = events;
    }
    expect(await stack.app.store.getEvent(id)).toMatchObject({ status: 'pending', attempts: 0 });
    await invoke({ action: 'redeliver', event_id: id });
    expect(receivedOf(id)).toHaveLength(1);
  });

  it.each([
    ['an unknown action', { action: 'deliver' }],
    ['no event id', { action: 'redeliver' }],
    ['an id without the evt_ prefix', { action: 'redeliver', event_id: 'order_closed_1' }],
    ['an id with the prefix inside', { action: 'redeliver', event_id: 'xevt_order_closed_1' }],
    ['an id with a character no event id has', { action: 'redeliver', event_id: 'evt_order_closed_1!' }],
    ['an id longer than any event id', { action: 'redeliver', event_id: `evt_${'a'.repeat(201)}` }],
  ])('sending %s is refused, and starts no run', async (_, request) => {
    const id = await closedOrderEvent();
    const { result, lines } = await captureOutput(() => invoke(request));
    expect(result).toEqual({ error: 'INVALID_REQUEST', message: expect.stringContaining('redeliver') });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'dispatcher request refused', code: 'INVALID_REQUEST' }));
    expect(receivedOf(id)).toHaveLength(0);
    await invoke(SCHEDULED); // the books stay clean for the next test
  });
});
