/**
 * The simulator's own routes, for `npm run sandbox:pay` and tests that play the user (or the gateway's
 * back office) over HTTP:
 *   POST /sandbox/pay/{no}              the user pays; body `{"notify":true}` also sends the callback
 *                                       (to the trade's notify_url, or to `notify_url` in the body)
 *   POST /sandbox/alipay/register       body = an APP order string: the user opened it in Alipay
 *   GET  /sandbox/trades/{no}           the trade as the sandbox holds it
 *   GET  /sandbox/trades/{no}/refunds   its refunds, oldest first
 *   POST /sandbox/trades/{no}/finish    Alipay: the trade's refund period is over (TRADE_FINISHED)
 *   POST /sandbox/trades/{no}/backdate  body `{"paid_at":"2025-01-01T00:00:00+08:00"}`: when it was paid
 *   POST /sandbox/fail-next             body `{"route":"wechat.refund","times":1,"how":"drop"}` (gateway.failNext)
 *   POST /sandbox/refunds/fail-next     body `{"channel":"wechat","how":"abnormal","times":1}` (gateway.failNextRefund)
 *   GET  /sandbox/refunds/settings      the refund settings; POST with a partial body changes them
 *   POST /sandbox/refunds/{no}/resume-abnormal  WeChat: the merchant sends an ABNORMAL refund on (发起异常退款);
 *                                       it succeeds `settleAfterMs` later and is notified (gateway.resumeAbnormalRefund)
 * Refusals are JSON `{code, message}` with the status of the {@link SandboxGatewayError}.
 *
 * @example
 * const simulator = new SimulatorApi(trades, alipay, credentials, { refunds, failures });
 * const routed = simulator.route(req, url, body); // undefined for a path that is not the simulator's
 */
import type http from 'node:http';
import type { AlipayApi } from './alipayApi';
import type { SandboxCredentials } from './credentials';
import { SANDBOX_ROUTES, type SandboxFailure, type SandboxRoute, type ScheduledFailures } from './failures';
import { type NotificationDelivery, type PaidTradeSource, sendNotificationForPaidTrade } from './notifications';
import type { SandboxRefundFailure, SandboxRefundSettings } from './refund';
import type { RefundDesk } from './refundDesk';
import { jsonReply, type Reply, type RoutedRequest } from './reply';
import { parseJsonObject } from './requestValues';
import { SandboxGatewayError } from './sandboxGatewayError';
import type { SandboxChannel } from './trade';
import type { TradeBook } from './tradeBook';

const FAILURES: readonly SandboxFailure[] = ['500', 'drop', 'busy'];

/** A control's JSON body; refused when it is not an object. */
function controlBody(body: string): Record<string, unknown> {
  const parsed = body.trim() ? parseJsonObject(body) : {};
  if (!parsed) throw new SandboxGatewayError('INVALID_REQUEST', 'the body is not a JSON object');
  return parsed;
}

/** `times` from a control's body: 1 when absent. */
function timesOf(options: Record<string, unknown>): number {
  const times = options.times ?? 1;
  if (typeof times !== 'number' || !Number.isSafeInteger(times) || times < 1)
    throw new SandboxGatewayError('INVALID_REQUEST', `times ${String(times)} is not a whole number >= 1`);
  return times;
}

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
    private readonly controls: { refunds: RefundDesk; failures: ScheduledFailures; resumeAbnormalRefund(outRefundNo: string): void },
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
    const ofTrade = /^\/sandbox\/trades\/([^/]+)\/(refunds|finish|backdate)$/.exec(path);
    if (ofTrade) {
      const outTradeNo = decodeURIComponent(ofTrade[1]);
      if (method === 'GET' && ofTrade[2] === 'refunds') return refusable(() => jsonReply(200, this.controls.refunds.book.ofTrade(outTradeNo)));
      if (method === 'POST' && ofTrade[2] === 'finish') return refusable(() => jsonReply(200, this.trades.finishAlipayTrade(outTradeNo)));
      if (method === 'POST' && ofTrade[2] === 'backdate') return refusable(() => this.backdate(outTradeNo, body));
    }
    if (method === 'POST' && path === '/sandbox/fail-next') return refusable(() => this.failNext(body));
    if (method === 'POST' && path === '/sandbox/refunds/fail-next') return refusable(() => this.failNextRefund(body));
    const resume = /^\/sandbox\/refunds\/([^/]+)\/resume-abnormal$/.exec(path);
    if (method === 'POST' && resume) {
      const outRefundNo = decodeURIComponent(resume[1]);
      return refusable(() => {
        this.controls.resumeAbnormalRefund(outRefundNo);
        return jsonReply(200, { out_refund_no: outRefundNo, status: 'PROCESSING' });
      });
    }
    if (path === '/sandbox/refunds/settings' && (method === 'GET' || method === 'POST')) {
      return refusable(() =>
        jsonReply(
          200,
          method === 'GET' ? this.controls.refunds.settings : this.controls.refunds.configure(controlBody(body) as Partial<SandboxRefundSettings>),
        ),
      );
    }
    return undefined;
  }

  private backdate(outTradeNo: string, body: string): Reply {
    const paidAt = controlBody(body).paid_at;
    if (typeof paidAt !== 'string') throw new SandboxGatewayError('INVALID_REQUEST', 'paid_at (an ISO 8601 / RFC 3339 time) is required');
    return jsonReply(200, this.trades.backdatePayment(outTradeNo, new Date(paidAt)));
  }

  private failNext(body: string): Reply {
    const options = controlBody(body);
    const route = options.route as SandboxRoute;
    const how = (options.how ?? '500') as SandboxFailure;
    if (!SANDBOX_ROUTES.includes(route)) throw new SandboxGatewayError('INVALID_REQUEST', `route ${String(route)} is not one of ${SANDBOX_ROUTES.join(', ')}`);
    if (!FAILURES.includes(how)) throw new SandboxGatewayError('INVALID_REQUEST', `how ${String(how)} is not one of ${FAILURES.join(', ')}`);
    const times = timesOf(options);
    this.controls.failures.add(route, times, how);
    return jsonReply(200, { route, times, how });
  }

  private failNextRefund(body: string): Reply {
    const options = controlBody(body);
    const times = timesOf(options);
    this.controls.refunds.failNext(options.channel as SandboxChannel, options.how as SandboxRefundFailure, times);
    return jsonReply(200, { channel: options.channel, how: options.how, times });
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
