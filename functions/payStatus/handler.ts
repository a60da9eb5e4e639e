import { createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { apiHandler } from '../../lib/http/apiHandler';
import { parseOrderIdQuery } from '../../lib/http/payRequest';
import { getPayStatus } from '../../lib/pay/payStatus';

export const app = createApp(loadConfig(), { uses: ['appTokens'] });

/** GET /order/pay/status?order_id=N */
export const handler = apiHandler(
  app,
  async (event, context) => {
    const orderId = parseOrderIdQuery(event.queryStringParameters);
    return { msg: 'ok', data: await getPayStatus(app, context.userId, orderId) };
  },
  { body: false },
);
