import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createApp } from '../../lib/app';
import { waitForSecret } from '../../lib/http/waitForSecret';
import { log, logger } from '../../lib/log';
import { metrics } from '../../lib/metrics';
import { DEFAULT_SWEEP, type SweepReport, sweepOpenAttempts } from '../../lib/pay/sweep';

export const app = createApp();

/**
 * Every minute: settles open attempts at their gateway, releases the expired ones. A run that throws
 * fails the invocation, which goes to the function's failure queue (serverless.yml).
 */
export const handler = middy<unknown, SweepReport>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(waitForSecret(app))
  .handler(async () => {
    const report = await sweepOpenAttempts(app, { ...DEFAULT_SWEEP, payTimeoutMinutes: app.config.payTimeoutMinutes });
    for (const result of ['paid', 'released', 'unwatched', 'failed'] as const) {
      if (report[result] > 0 || result === 'failed') metrics.count('SweepAttempt', { result }, report[result]);
    }
    log.info('sweep done', { ...report });
    return report;
  });
