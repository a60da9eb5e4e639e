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

/** The gateways with every call first taking its channel's limiter, and counted. */
export function rateLimited(
  gateways: Record<Channel, PaymentGateway>,
  limiters: Record<Channel, CallRateLimiter>,
  calls: GatewayCallCount,
): Record<Channel, PaymentGateway> {
  const wrap = (channel: Channel): PaymentGateway =>
    new Proxy(gateways[channel], {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || property === 'channel') return value;
        return async (...args: unknown[]) => {
          await limiters[channel].take();
          calls[channel]++;
          return value.apply(target, args);
        };
      },
    });
  return { wechat: wrap('wechat'), alipay: wrap('alipay') };
}
