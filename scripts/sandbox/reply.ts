import type { SandboxFailure, SandboxRoute } from './failures';

/** An HTTP answer, as a route hands it to the server. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** @example jsonReply(404, { code: 'TRADE_NOT_FOUND', message: 'no such trade' }) */
export const jsonReply = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(value),
});

/**
 * A request a protocol has taken on: how to answer it, and, where `failNext` can fail it, the route's
 * name and the gateway's own answer to a failure.
 *
 * @example
 * { handle: () => this.query(outTradeNo), failure: { route: 'wechat.query', reply: () => this.error(500, 'SYSTEM_ERROR', '系统错误') } }
 */
export interface RoutedRequest {
  handle(): Reply | Promise<Reply>;
  failure?: { route: SandboxRoute; reply(how: Exclude<SandboxFailure, 'drop'>): Reply };
}
