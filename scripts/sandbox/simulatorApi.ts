/**
 * The simulator's own routes, for `npm run sandbox:pay` and tests that play the user over HTTP:
 *   POST /sandbox/pay/{no}            the user pays; body `{"notify":true}` also sends the callback
 *                                     (to the trade's notify_url, or to `notify_url` in the body)
 *   POST /sandbox/alipay/register     body = an APP order string: the user opened it in Alipay
 *   GET  /sandbox/trades/{no}         the trade as the sandbox holds it
 * Refusals are JSON `{code, message}` with the status of the {@link SandboxGatewayError}.
 *
 * @example
 * const simulator = new SimulatorApi(trades, alipay, credentials);
 * const routed = simulator.route(req, url, body); // undefined for a path that is not the simulator's
 */
import type http from 'node:http';
import type { AlipayApi } from './alipayApi';
import type { SandboxCredentials } from './credentials';
import { type NotificationDelivery, type PaidTradeSource, sendNotificationForPaidTrade } from './notifications';
import { jsonReply, type Reply, type RoutedRequest } from './reply';
import { parseJsonObject } from './requestValues';
import { SandboxGatewayError } from './sandboxGatewayError';
import type { TradeBook } from './tradeBook';

/** A route whose refusals (SandboxGatewayError) are answers; any other error is a fault of the sandbox, left to the server. */
function refusable(answer: () => Reply | Promise<Reply>): RoutedRequest {
  return {
    handle: async () => {
      try {
        return await answer();
      } catch (err) {
        if (err instanceof SandboxGatewayError) return jsonReply(err.httpStatus, { code: err.code, message: err.message });
        throw err;
      }
    },
  };
}

export class SimulatorApi {
  private readonly paidTrades: PaidTradeSource;

  constructor(
    private readonly trades: TradeBook,
    private readonly alipay: AlipayApi,
    credentials: SandboxCredentials,
  ) {
    this.paidTrades = { trade: (outTradeNo) => trades.snapshot(outTradeNo), credentials };
  }

  route(req: http.IncomingMessage, url: URL, body: string): RoutedRequest | undefined {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const pay = /^\/sandbox\/pay\/([^/]+)$/.exec(path);
    if (method === 'POST' && pay) return refusable(() => this.pay(decodeURIComponent(pay[1]), body));
    if (method === 'POST' && path === '/sandbox/alipay/register') return refusable(() => jsonReply(200, this.alipay.registerAppOrder(body)));
    const trade = /^\/sandbox\/trades\/([^/]+)$/.exec(path);
    if (method === 'GET' && trade) return refusable(() => this.trade(decodeURIComponent(trade[1])));
    return undefined;
  }

  private async pay(outTradeNo: string, body: string): Promise<Reply> {
    const options = (body.trim() ? parseJsonObject(body) : {}) ?? {};
    const paid = this.trades.pay(outTradeNo);
    let notification: NotificationDelivery | { error: string } | undefined;
    if (options.notify === true) {
      const notifyUrl = typeof options.notify_url === 'string' ? options.notify_url : undefined;
      notification = await sendNotificationForPaidTrade(this.paidTrades, outTradeNo, notifyUrl).catch((err: Error) => ({ error: err.message }));
    }
    return jsonReply(200, { ...paid, outTradeNo, ...(notification ? { notification } : {}) });
  }

  private trade(outTradeNo: string): Reply {
    const trade = this.trades.find(outTradeNo);
    return trade ? jsonReply(200, trade) : jsonReply(404, { code: 'TRADE_NOT_FOUND', message: 'no such trade' });
  }
}
