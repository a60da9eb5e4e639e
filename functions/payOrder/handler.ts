import { createApp } from '../../lib/app';
import { loadConfig } from '../../lib/config';
import { apiHandler } from '../../lib/http/apiHandler';
import { countPayRequests } from '../../lib/http/countPayRequests';
import { parsePayOrderBody } from '../../lib/http/payRequest';
import { requestDeadline } from '../../lib/http/requestDeadline';
import { payOrder } from '../../lib/pay/payOrder';

export const app = createApp(loadConfig(), { uses: ['appTokens'] });
const deps = { store: app.store, gateways: app.gateways, fenPerPoint: app.config.fenPerPoint, payTimeoutMinutes: app.config.payTimeoutMinutes };

/** POST /order/pay */
export const handler = apiHandler(
  app,
  async (event, context) => {
    const input = parsePayOrderBody(event.body);
    const result = await payOrder({ ...deps, deadline: requestDeadline(context) }, context.userId, input);
    return result.outcome === 'paid'
      ? { msg: '支付成功', data: { pay_param: null, out_trade_no: result.outTradeNo } }
      : { msg: '下单成功', data: { pay_param: result.payParam, out_trade_no: result.outTradeNo } };
  },
  { observe: countPayRequests() },
);
