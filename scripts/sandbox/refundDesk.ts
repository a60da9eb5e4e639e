import { DEFAULT_REFUND_SETTINGS, type SandboxRefundFailure, type SandboxRefundSettings } from './refund';
import { RefundBook } from './refundBook';
import { SandboxGatewayError } from './sandboxGatewayError';
import type { SandboxChannel } from './trade';

/** Refunds Alipay takes synchronously cannot end ABNORMAL or CLOSED. */
const FAILURES_BY_CHANNEL: Record<SandboxChannel, readonly SandboxRefundFailure[]> = {
  wechat: ['balance', 'abnormal', 'closed', 'silent'],
  alipay: ['balance', 'silent'],
};

/**
 * The gateways' back office for refunds, shared by both protocols: the refunds themselves (`book`), the
 * settings, the failures asked for (`failNext`), and the work done after an answer (settling a WeChat refund,
 * sending a notification), which `settled()` waits for and `close()` cancels.
 *
 * @example
 * const desk = new RefundDesk({ settleAfterMs: 50 });
 * desk.later(desk.settings.settleAfterMs, async (signal) => { ... });
 * await desk.settled();
 */
export class RefundDesk {
  readonly book: RefundBook;
  private current: SandboxRefundSettings;
  private readonly failures: Record<SandboxChannel, SandboxRefundFailure[]> = { wechat: [], alipay: [] };
  private readonly pending = new Set<Promise<void>>();
  /** Jobs waiting for their time, and how to let go of their waiters when the gateway closes. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly abort = new AbortController();

  constructor(settings: Partial<SandboxRefundSettings> = {}, book = new RefundBook()) {
    this.book = book;
    this.current = RefundDesk.checked({ ...DEFAULT_REFUND_SETTINGS, ...settings });
  }

  private static checked(settings: SandboxRefundSettings): SandboxRefundSettings {
    if (settings.wechatMode !== 'delayed' && settings.wechatMode !== 'immediate') {
      throw new SandboxGatewayError('INVALID_REQUEST', `wechatMode ${String(settings.wechatMode)} is not 'delayed' or 'immediate'`);
    }
    if (!Number.isSafeInteger(settings.settleAfterMs) || settings.settleAfterMs < 0) {
      throw new SandboxGatewayError('INVALID_REQUEST', `settleAfterMs ${String(settings.settleAfterMs)} is not a whole number of milliseconds >= 0`);
    }
    if (typeof settings.alipayNotify !== 'boolean') throw new SandboxGatewayError('INVALID_REQUEST', 'alipayNotify is not true or false');
    return settings;
  }

  /** A copy of the settings in force. */
  get settings(): SandboxRefundSettings {
    return { ...this.current };
  }

  /** Changes the settings for refunds made from now on; returns them. */
  configure(patch: Partial<SandboxRefundSettings>): SandboxRefundSettings {
    const defined = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
    this.current = RefundDesk.checked({ ...this.current, ...defined });
    return this.settings;
  }

  /** The next `times` refunds created at `channel` fail as `how` says. */
  failNext(channel: SandboxChannel, how: SandboxRefundFailure, times = 1): void {
    if (!FAILURES_BY_CHANNEL[channel]?.includes(how)) {
      throw new SandboxGatewayError(
        'INVALID_REQUEST',
        `a ${channel} refund cannot fail as '${how}' (${FAILURES_BY_CHANNEL[channel]?.join(', ') ?? 'no such channel'})`,
      );
    }
    if (!Number.isSafeInteger(times) || times < 1) throw new SandboxGatewayError('INVALID_REQUEST', `times ${times} is not a whole number >= 1`);
    for (let i = 0; i < times; i += 1) this.failures[channel].push(how);
  }

  /** The failure due for the refund about to be created at `channel`, if one is. */
  takeFailure(channel: SandboxChannel): SandboxRefundFailure | undefined {
    return this.failures[channel].shift();
  }

  /**
   * Runs `job` `delayMs` from now (0: right after the current answer is sent). Its errors are the job's to
   * record; `signal` aborts when the gateway closes.
   */
  later(delayMs: number, job: (signal: AbortSignal) => Promise<void> | void): void {
    if (this.abort.signal.aborted) return;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        Promise.resolve()
          .then(() => job(this.abort.signal))
          .catch(() => undefined)
          .finally(resolve);
      }, delayMs);
      timer.unref();
      this.timers.set(timer, resolve);
    });
    this.pending.add(done);
    done.finally(() => this.pending.delete(done));
  }

  /** Resolves once every job scheduled so far, and any they scheduled, has run. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Cancels the jobs not yet run and aborts the notifications in flight. */
  close(): void {
    this.abort.abort();
    for (const [timer, release] of this.timers) {
      clearTimeout(timer);
      release();
    }
    this.timers.clear();
  }
}
