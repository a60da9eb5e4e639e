import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createApp } from '../../lib/app';
import { waitForSecret } from '../../lib/http/waitForSecret';
import { log, logger } from '../../lib/log';
import { metrics } from '../../lib/metrics';
import { DEFAULT_SWEEP, type SweepReport, sweep } from '../../lib/pay/sweep';

export const app = createApp();

/** `{ "group": n }` from its schedule (one per group, serverless.yml); without it, every group in turn (`npm run sweep`). */
export interface SweepEvent {
  group?: number;
}

/**
 * Every minute, once per group of due shards: the attempts that are due get their step (query, close
 * and release, or the last check), pending refunds are followed up (group 0). A run that throws fails
 * the invocation, which goes to the function's failure queue (serverless.yml).
 */
export const handler = middy<SweepEvent | undefined, SweepReport>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(waitForSecret(app))
  .handler(async (event) => {
    const { groups, gatewayCallsPerSecond } = app.config.sweep;
    const group = Number.isInteger(event?.group) && (event?.group as number) >= 0 && (event?.group as number) < groups ? event?.group : undefined;
    const report = await sweep(app, { ...DEFAULT_SWEEP, groups, gatewayCallsPerSecond }, group).catch((error: unknown) => {
      // Logged here with its stack mapped to the source; the runtime's own line would name minified chunks.
      log.error('sweep run failed', { group }, error);
      throw error;
    });
    for (const result of ['paid', 'released', 'unwatched', 'failed'] as const) {
      if (report[result] > 0 || result === 'failed') metrics.count('SweepAttempt', { result }, report[result]);
    }
    metrics.count('SweepBehind', {}, report.behind);
    log.info('sweep done', { ...report });
    return report;
  });
