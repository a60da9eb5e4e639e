import type middy from '@middy/core';
import type { App } from '../app';

/**
 * Every request waits for the stage's secret first: a missing or malformed secret fails it (a fault
 * of ours, logged with the field it names) before anything is read or written.
 */
export function waitForSecret(app: Pick<App, 'ready'>): middy.MiddlewareObj {
  return {
    before: async function waitForSecretBefore() {
      await app.ready();
    },
  };
}
