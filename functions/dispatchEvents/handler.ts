import { createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { dispatcherHandler } from '../../lib/events/dispatcherHandler';

export const app = createApp(loadConfig(), { uses: ['events'] });

/** Every minute, and for an operator (IAM, no route): delivers the shop's events (README "Events"). */
export const handler = dispatcherHandler(app);
