/**
 * A local stand-in for the WeChat Pay v3 and Alipay openapi gateways: one node:http server that
 * speaks both protocols with real signatures, keeps trades in memory (tradeBook.ts), and lets tests
 * and the payment simulator play the user who pays. This file is the server; the routes are
 *
 * WeChat Pay v3 (as https://api.mch.weixin.qq.com), wechatPayApi.ts, wechatRefundApi.ts:
 *   POST /v3/pay/transactions/app                               prepay (APP)
 *   GET  /v3/pay/transactions/out-trade-no/{no}?mchid=...        query
 *   POST /v3/pay/transactions/out-trade-no/{no}/close           close (204)
 *   POST /v3/refund/domestic/refunds                            refund (PROCESSING, then a REFUND.* notification)
 *   GET  /v3/refund/domestic/refunds/{out_refund_no}            refund query
 * Alipay (as https://openapi.alipay.com/gateway.do), alipayApi.ts, alipayRefundApi.ts:
 *   POST /alipay/gateway.do   method=alipay.trade.query | alipay.trade.close
 *                             | alipay.trade.refund | alipay.trade.fastpay.refund.query
 * Simulator, simulatorApi.ts:
 *   POST /sandbox/pay/{no}            the user pays; body `{"notify":true}` also sends the callback
 *   POST /sandbox/alipay/register     body = an APP order string: the user opened it in Alipay
 *   GET  /sandbox/trades/{no}         the trade as the sandbox holds it
 *   ... and the refund controls below, over HTTP (listed in simulatorApi.ts)
 * Refunds (refundBook.ts, refundDesk.ts) settle and notify on timers, after the answer; `refundsSettled()`
 * waits for them, `close()` cancels them.
 *
 * @example
 * const gateway = await startSandboxGateway({ credentials });
 * const pay = new WxPay({ appid, mchid, publicKey, privateKey });
 * pay.createHttp(createWechatSandboxHttp(gateway.url)); // from test/support/sandboxWechatHttp.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipayApi } from './alipayApi';
import type { SandboxCredentials } from './credentials';
import { type SandboxFailure, type SandboxRoute, ScheduledFailures } from './failures';
import type { SandboxRefund, SandboxRefundFailure, SandboxRefundSettings } from './refund';
import { RefundDesk } from './refundDesk';
import { jsonReply, type Reply, type RoutedRequest } from './reply';
import { SimulatorApi } from './simulatorApi';
import type { SandboxChannel, SandboxPayment, SandboxTrade } from './trade';
import { TradeBook } from './tradeBook';
import { WechatPayApi } from './wechatPayApi';

export type { SandboxFailure, SandboxRoute } from './failures';
export type { SandboxNotificationRecord, SandboxRefund, SandboxRefundFailure, SandboxRefundSettings, SandboxRefundStatus } from './refund';
export { SandboxGatewayError } from './sandboxGatewayError';
export type { SandboxChannel, SandboxPayment, SandboxTrade, SandboxTradeStatus } from './trade';

export interface SandboxGateway {
  url: string;
  port: number;
  credentials: SandboxCredentials;
  close(): Promise<void>;
  /** marks a trade paid as the gateway would after the user pays; returns the gateway trade id */
  pay(outTradeNo: string): SandboxPayment;
  /** A copy of the trade as the sandbox holds it (WeChat first if both channels know the number). */
  trade(outTradeNo: string): SandboxTrade | undefined;
  /** The user opened an Alipay APP order string: verify its signature and record a WAIT_BUYER_PAY trade. */
  registerAlipayOrder(orderString: string): SandboxTrade;
  /** make the next N requests matching a route fail (HTTP 500 / network drop) - for failure tests */
  failNext(route: SandboxRoute, times?: number, how?: SandboxFailure): void;
  /** Copies of the refunds of the trade(s) numbered `outTradeNo`, oldest first; each says whether and how it was notified. */
  refunds(outTradeNo: string): SandboxRefund[];
  /** Makes the next `times` (default 1) refunds created at `channel` fail as `how` says (see {@link SandboxRefundFailure}). */
  failNextRefund(channel: SandboxChannel, how: SandboxRefundFailure, times?: number): void;
  /** The refund settings in force, after applying `patch` (for refunds made from now on). */
  refundSettings(patch?: Partial<SandboxRefundSettings>): SandboxRefundSettings;
  /**
   * WeChat: the merchant sends an ABNORMAL refund on (发起异常退款, in the merchant platform or by its API): the
   * same refund is PROCESSING again, then SUCCESS with its REFUND.SUCCESS notification, as any refund settles.
   * @throws SandboxGatewayError when the refund is unknown or not ABNORMAL
   */
  resumeAbnormalRefund(outRefundNo: string): void;
  /** Resolves once every refund made so far has settled and its notification has been answered (or has failed). */
  refundsSettled(): Promise<void>;
  /**
   * WeChat: the merchant is switching from platform certificates to the WeChat Pay public key: answers to
   * requests that name no `Wechatpay-Serial` are signed with the platform certificate of `serial`
   * (undefined: the public key only, the default).
   */
  wechatCertificateSwitch(serial: string | undefined): void;
  /** Alipay: the paid trade's refund period is over, it is TRADE_FINISHED and refuses refunds. Returns a copy. */
  finishAlipayTrade(outTradeNo: string): SandboxTrade;
  /** Moves a paid trade's payment time (WeChat refuses to refund a payment more than a year old). Returns a copy. */
  backdatePayment(outTradeNo: string, paidAt: Date): SandboxTrade;
}

export interface StartSandboxGatewayOptions {
  credentials: SandboxCredentials;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** WeChat refuses a request whose Authorization timestamp is further than this from now. Default 300. */
  wechatTimestampToleranceSeconds?: number;
  /**
   * Alipay refuses a request whose `timestamp` (read as Beijing time) is further than this from now,
   * with `isv.invalid-timestamp`. Default 600: a process in UTC that sends its local time is 8 h off.
   */
  alipayTimestampToleranceSeconds?: number;
  /** How refunds move on (default: WeChat delayed by 200 ms, Alipay notifications on); `refundSettings()` changes them later. */
  refunds?: Partial<SandboxRefundSettings>;
}

const MAX_BODY_BYTES = 1024 * 1024;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts the sandbox gateway. Resolves once it listens.
 *
 * @example
 * const gateway = await startSandboxGateway({ credentials, port: 4010 });
 * // ... later
 * await gateway.close();
 */
export async function startSandboxGateway(opts: StartSandboxGatewayOptions): Promise<SandboxGateway> {
  const { credentials } = opts;
  const host = opts.host ?? '127.0.0.1';
  const trades = new TradeBook();
  const failures = new ScheduledFailures();
  const refunds = new RefundDesk(opts.refunds);
  const wechat = new WechatPayApi(credentials.wechat, trades, opts.wechatTimestampToleranceSeconds ?? 300, refunds);
  const alipay = new AlipayApi(credentials.alipay, trades, opts.alipayTimestampToleranceSeconds ?? 600, refunds);
  const simulator = new SimulatorApi(trades, alipay, credentials, { refunds, failures, resumeAbnormalRefund: (no) => wechat.resumeAbnormalRefund(no) });

  function route(req: http.IncomingMessage, body: string): RoutedRequest {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    return (
      wechat.route(req, url, body) ??
      alipay.route(req, url, body) ??
      simulator.route(req, url, body) ?? { handle: () => jsonReply(404, { code: 'NOT_FOUND', message: `no route ${req.method ?? 'GET'} ${url.pathname}` }) }
    );
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const routed = route(req, body);
    const failure = routed.failure && failures.take(routed.failure.route);
    let reply: Reply;
    if (failure === '500' || failure === 'busy' || failure === 'rate_limited') {
      reply = routed.failure!.reply(failure);
    } else {
      reply = await routed.handle();
      if (failure === 'drop') {
        req.socket.destroy();
        return;
      }
    }
    res.writeHead(reply.status, reply.headers ?? {});
    res.end(reply.body);
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`sandbox gateway error: ${err.message}`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    credentials,
    close: () =>
      new Promise<void>((resolve, reject) => {
        refunds.close();
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; without this close() waits for them to time out.
        server.closeAllConnections();
      }),
    pay: (outTradeNo) => trades.pay(outTradeNo),
    trade: (outTradeNo) => trades.snapshot(outTradeNo),
    registerAlipayOrder: (orderString) => alipay.registerAppOrder(orderString),
    failNext: (route, times = 1, how = '500') => failures.add(route, times, how),
    refunds: (outTradeNo) => refunds.book.ofTrade(outTradeNo),
    failNextRefund: (channel, how, times = 1) => refunds.failNext(channel, how, times),
    refundSettings: (patch = {}) => refunds.configure(patch),
    resumeAbnormalRefund: (outRefundNo) => wechat.resumeAbnormalRefund(outRefundNo),
    refundsSettled: () => refunds.settled(),
    wechatCertificateSwitch: (serial) => {
      wechat.certificateSerial = serial;
    },
    finishAlipayTrade: (outTradeNo) => trades.finishAlipayTrade(outTradeNo),
    backdatePayment: (outTradeNo, paidAt) => trades.backdatePayment(outTradeNo, paidAt),
  };
}
