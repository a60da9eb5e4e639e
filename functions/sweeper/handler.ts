import { createApp } from '../../lib/app';
import { log } from '../../lib/log';
import { DEFAULT_SWEEP, sweepOpenAttempts, type SweepReport } from '../../lib/pay/sweep';

const app = createApp();

/** Every minute: settles open attempts at their gateway, releases the expired ones. */
export const handler = async (): Promise<SweepReport> => {
  const report = await sweepOpenAttempts(app, { ...DEFAULT_SWEEP, payTimeoutMinutes: app.config.payTimeoutMinutes });
  log.info('sweep done', { ...report });
  return report;
};
