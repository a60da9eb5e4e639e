import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { App } from '../app';
import { SHOP_ERRORS, type ShopErrorCode, ShopRefusal } from '../domain/errors';
import { waitForSecret } from '../http/waitForSecret';
import { log, logger } from '../log';
import { parseShopCommand } from '../shop/commands';
import { runShopCommand, type ShopAnswer } from '../shop/shopCommands';

export type ShopCommandReply = ShopAnswer | { error: ShopErrorCode; message: string };

/**
 * The shopCommand function: no HTTP route, only the shop's own services (IAM) may invoke it. It always
 * returns a JSON answer, never throws: `{ok: true, changed, ...}`, or `{error, message}` having changed nothing.
 */
export function shopCommandHandler(app: Pick<App, 'ready' | 'store' | 'gateways' | 'now'>) {
  return middy<unknown, ShopCommandReply>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: function answerInternalError(request) {
        log.error('shop command failed', {}, request.error);
        request.response = { error: 'INTERNAL_ERROR', message: SHOP_ERRORS.INTERNAL_ERROR };
      },
    })
    .use(waitForSecret(app))
    .handler(async (event) => {
      const parsed = parseShopCommand(event);
      if (!parsed.ok) {
        log.warn('shop command refused', { code: 'INVALID_COMMAND', problem: parsed.problem });
        return { error: 'INVALID_COMMAND', message: `${SHOP_ERRORS.INVALID_COMMAND}(${parsed.problem})` };
      }
      log.bind({ command: parsed.command.command });
      try {
        const answer = await runShopCommand(app, parsed.command);
        log.info('shop command done', { changed: answer.changed });
        return answer;
      } catch (error) {
        if (!(error instanceof ShopRefusal)) throw error;
        // ORDER_BUSY and GATEWAY_ERROR carry what failed (the lost race, the gateway's error) for the operator.
        log.warn('shop command refused', { code: error.code }, error.cause);
        return { error: error.code, message: error.message };
      }
    });
}
