import type { Channel } from '../domain/model';
import type { PaymentGateway } from '../gateways/paymentGateway';

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * At most `perSecond` calls started within any one second (a sliding window over the last starts):
 * a caller over the limit waits for the oldest start to leave the window. In one process only: the
 * sweeping splits the cap per channel between its workers (`sweepShare`), so no counter item is shared.
 */
export class CallRateLimiter {
  private readonly starts: number[] = [];

  constructor(
    private readonly perSecond: number,
    private readonly clock: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = pause,
  ) {
    if (!Number.isInteger(perSecond) || perSecond < 1) throw new RangeError(`perSecond must be a positive integer, got ${perSecond}`);
  }

  async take(): Promise<void> {
    for (;;) {
      const now = this.clock();
      while (this.starts.length > 0 && this.starts[0] <= now - 1000) this.starts.shift();
      if (this.starts.length < this.perSecond) {
        this.starts.push(now);
        return;
      }
      await this.sleep(this.starts[0] + 1000 - now);
    }
  }
}

/** Gateway calls made through `rateLimited`, by channel. */
export type GatewayCallCount = Record<Channel, number>;

/**
 * The gateways with `before(channel, method, args)` awaited ahead of every call of their methods, once the
 * gateway is `ready` to send it: the one place a gateway call is paced or counted (the sweeping's cap,
 * and the tests and bench that count calls per trade).
 */
export function beforeEachCall(
  gateways: Record<Channel, PaymentGateway>,
  before: (channel: Channel, method: string, args: unknown[]) => void | Promise<void>,
): Record<Channel, PaymentGateway> {
  const wrap = (channel: Channel): PaymentGateway =>
    new Proxy(gateways[channel], {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || property === 'ready') return value;
        return async (...args: unknown[]) => {
          // Paced from when the call can go out, not before a wait of the gateway's own (a secret refresh).
          await target.ready?.();
          await before(channel, String(property), args);
          return value.apply(target, args);
        };
      },
    });
  return { wechat: wrap('wechat'), alipay: wrap('alipay') };
}

/** The gateways with every call first taking its channel's limiter, and counted. */
export function rateLimited(
  gateways: Record<Channel, PaymentGateway>,
  limiters: Record<Channel, CallRateLimiter>,
  calls: GatewayCallCount,
): Record<Channel, PaymentGateway> {
  return beforeEachCall(gateways, async (channel) => {
    await limiters[channel].take();
    calls[channel]++;
  });
}

/** The out_trade_no a gateway call is about: its first argument, or that argument's `outTradeNo` (refunds). */
export function tradeOfCall(args: unknown[]): string {
  const first = args[0] as string | { outTradeNo: string };
  return typeof first === 'string' ? first : first.outTradeNo;
}
