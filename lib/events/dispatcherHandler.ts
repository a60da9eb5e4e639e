import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import * as v from 'valibot';
import type { App } from '../app';
import type { OutboxEvent } from '../domain/events';
import { EVENT_SHARDS, eventShardsOf } from '../domain/events';
import { waitForSecret } from '../http/waitForSecret';
import { log, logger } from '../log';
import { metrics } from '../metrics';
import { DEFAULT_EVENTS_PER_SHARD, type DispatchDeps, type DispatchReport, dispatchEvents, redeliverEvent } from './dispatchEvents';
import { eventSinks } from './eventSinks';

/** Time kept back from the function's timeout: the last round's deliveries and their records must fit. */
const RESERVE_MS = 12_000;
/** A run's time when the invocation gives none (a local invoke without a context). */
const DEFAULT_REMAINING_MS = 55_000;

/** What an operator may ask of the dispatcher (`npm run shop -- events | redeliver ID`). */
const operatorRequest = v.variant('action', [
  v.object({ action: v.literal('list') }),
  v.object({ action: v.literal('redeliver'), event_id: v.pipe(v.string(), v.regex(/^evt_[\w.-]{1,200}$/)) }),
]);

export type DispatcherReply =
  | DispatchReport
  | { events: ReturnType<typeof listed>[] }
  | { event: ReturnType<typeof listed>; result: unknown }
  | { error: string; message: string };

/**
 * When a run stops starting delivery rounds: the function's remaining time less what the last round
 * needs, and never more than half of a short remaining time.
 */
export function runDeadline(nowMs: number, remainingMs: number): number {
  return nowMs + remainingMs - Math.min(RESERVE_MS, remainingMs / 2);
}

/**
 * The dispatchEvents function. Every minute, once per group of the outbox's shards (schedule), it
 * delivers that group's due events; invoked by an
 * operator (IAM) with `{"action": "list"}` it lists the undelivered ones, with
 * `{"action": "redeliver", "event_id": "evt_…"}` it sends one again at once.
 */
export function dispatcherHandler(app: Pick<App, 'ready' | 'store' | 'config' | 'now' | 'shopSecret'>) {
  const deps = async (): Promise<DispatchDeps> => ({
    store: app.store,
    sinks: await eventSinks(app.config.events, await app.shopSecret(), app.now),
    now: app.now,
  });
  return middy<unknown, DispatcherReply, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(waitForSecret(app))
    .handler(async (event, context) => {
      if (!isOperatorRequest(event)) {
        const remaining = typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : DEFAULT_REMAINING_MS;
        const deadline = runDeadline(app.now().getTime(), remaining);
        const shards = shardsToDeliver(event, app.config.dispatch.groups);
        if (shards === 'none') return { delivered: 0, retrying: 0, failing: 0, dead: 0, waiting: 0, raced: 0 };
        const report = await dispatchEvents(await deps(), { perShard: DEFAULT_EVENTS_PER_SHARD, deadline, shards });
        for (const outcome of ['delivered', 'retrying', 'failing', 'dead'] as const) {
          if (report[outcome] > 0) metrics.count('EventDelivery', { outcome }, report[outcome]);
        }
        log.info('events dispatched', { ...report });
        return report;
      }
      const request = v.safeParse(operatorRequest, event);
      if (!request.success) {
        // An operator's typo answers so, instead of starting a delivery run the operator did not ask for.
        log.warn('dispatcher request refused', { code: 'INVALID_REQUEST' });
        return { error: 'INVALID_REQUEST', message: '请求应为 {"action":"list"} 或 {"action":"redeliver","event_id":"evt_…"}' };
      }
      if (request.output.action === 'list') {
        const shards = await Promise.all(Array.from({ length: EVENT_SHARDS }, (_, shard) => app.store.findPendingEvents(shard, 100)));
        return { events: shards.flatMap((page) => page.events).map(listed) };
      }
      const dispatch = await deps();
      const { event: found, result } = await redeliverEvent(dispatch, request.output.event_id);
      if (!found) return { error: 'EVENT_NOT_FOUND', message: `没有这个事件: ${request.output.event_id}` };
      if (dispatch.sinks.length === 0) return { error: 'NO_TARGET', message: '未配置事件目标(SHOP_WEBHOOK_URL 或 EVENT_BUS_NAME),事件未发送' };
      log.info('event redelivered', { event_id: found.event.id, status: found.status });
      return { event: listed(found), result };
    });
}

/**
 * `{"group": n}` from its schedule (one per group, serverless.yml): that group's shards. Without a group
 * (a run by hand), every shard. A group the stage does not have, none: a schedule of before
 * dispatchGroups was lowered (removed at the end of the deploy) whose shards are another group's now, and
 * two runs of one shard would send its events twice.
 */
function shardsToDeliver(event: unknown, groups: number): number[] | undefined | 'none' {
  const group = (event as { group?: unknown } | null)?.group;
  if (group === undefined) return undefined;
  if (typeof group === 'number' && Number.isInteger(group) && group >= 0 && group < groups) return eventShardsOf(group, groups);
  log.warn('dispatch group not of this stage: nothing sent', { group: String(group), groups });
  return 'none';
}

/** The schedule's event carries no `action`; an operator's request always does. */
function isOperatorRequest(event: unknown): boolean {
  return typeof event === 'object' && event !== null && 'action' in event;
}

function listed(outbox: OutboxEvent) {
  return {
    id: outbox.event.id,
    type: outbox.event.type,
    order_id: outbox.event.data.order_id,
    created_at: outbox.event.created_at,
    status: outbox.status,
    attempts: outbox.attempts,
    delivered_to: outbox.deliveredTo,
    next_attempt_at: outbox.nextAttemptAt ?? null,
    last_attempt: outbox.deliveries.at(-1) ?? null,
  };
}
