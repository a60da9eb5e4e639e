/** The gateway calls a test can make fail (`failNext`). */
export type SandboxRoute =
  | 'wechat.prepay'
  | 'wechat.query'
  | 'wechat.close'
  | 'wechat.refund'
  | 'wechat.refundQuery'
  | 'alipay.query'
  | 'alipay.close'
  | 'alipay.refund'
  | 'alipay.refundQuery';

/** Every {@link SandboxRoute}, for checking a route named over HTTP. */
export const SANDBOX_ROUTES: readonly SandboxRoute[] = [
  'wechat.prepay',
  'wechat.query',
  'wechat.close',
  'wechat.refund',
  'wechat.refundQuery',
  'alipay.query',
  'alipay.close',
  'alipay.refund',
  'alipay.refundQuery',
];

/**
 * How a `failNext` request fails:
 * - `'500'`: HTTP 500 before anything changes (WeChat body `{"code":"SYSTEM_ERROR"}`, signed; Alipay plain text).
 * - `'drop'`: the request IS processed (a prepay is created, a close closes, a refund is made), then the socket is
 *   destroyed without an answer: the caller cannot know, and must retry or query.
 * - `'busy'`: the gateway's own "try again" answer: Alipay HTTP 200 `code 20000 isp.unknow-error`
 *   (signed), WeChat same as `'500'`.
 * - `'rate_limited'`: the merchant called too often: WeChat HTTP 429 `FREQUENCY_LIMITED` (signed); Alipay
 *   same as `'busy'` (its rate-limit answer is not modelled).
 */
export type SandboxFailure = '500' | 'drop' | 'busy' | 'rate_limited';

/**
 * The failures asked for and not yet served, in order, per route.
 *
 * @example
 * failures.add('wechat.prepay', 2, '500');
 * failures.take('wechat.prepay'); // '500', then '500', then undefined
 */
export class ScheduledFailures {
  private readonly queues = new Map<SandboxRoute, SandboxFailure[]>();

  add(route: SandboxRoute, times: number, how: SandboxFailure): void {
    const queue = this.queues.get(route) ?? [];
    for (let i = 0; i < times; i += 1) queue.push(how);
    this.queues.set(route, queue);
  }

  /** The failure for the next request on `route`, if one is due. */
  take(route: SandboxRoute): SandboxFailure | undefined {
    return this.queues.get(route)?.shift();
  }
}
