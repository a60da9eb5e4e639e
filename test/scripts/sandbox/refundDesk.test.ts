import { DEFAULT_REFUND_SETTINGS } from '../../../scripts/sandbox/refund';
import { RefundDesk } from '../../../scripts/sandbox/refundDesk';

describe('RefundDesk', () => {
  it('starts from the defaults, takes partial settings, and refuses settings it cannot use', () => {
    expect(new RefundDesk().settings).toEqual({ wechatMode: 'delayed', settleAfterMs: 200, alipayNotify: true });
    expect(DEFAULT_REFUND_SETTINGS).toEqual(new RefundDesk().settings);
    const desk = new RefundDesk({ settleAfterMs: 5 });
    expect(desk.configure({ wechatMode: 'immediate', settleAfterMs: undefined })).toEqual({ wechatMode: 'immediate', settleAfterMs: 5, alipayNotify: true });
    const copy = desk.settings;
    copy.settleAfterMs = 1;
    expect(desk.settings.settleAfterMs).toBe(5);
    expect(() => desk.configure({ wechatMode: 'soon' as never })).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => desk.configure({ settleAfterMs: -1 })).toThrow(/settleAfterMs/);
    expect(() => desk.configure({ settleAfterMs: 1.5 })).toThrow(/settleAfterMs/);
    expect(() => desk.configure({ alipayNotify: 'yes' as never })).toThrow(/alipayNotify/);
    expect(() => new RefundDesk({ settleAfterMs: Number.NaN })).toThrow(/settleAfterMs/);
    expect(desk.settings).toEqual({ wechatMode: 'immediate', settleAfterMs: 5, alipayNotify: true });
  });

  it('serves the failures asked for in order, per channel, and refuses those a channel does not have', () => {
    const desk = new RefundDesk();
    desk.failNext('wechat', 'abnormal', 2);
    desk.failNext('wechat', 'silent');
    desk.failNext('alipay', 'balance');
    expect([desk.takeFailure('wechat'), desk.takeFailure('wechat'), desk.takeFailure('wechat'), desk.takeFailure('wechat')]).toEqual([
      'abnormal',
      'abnormal',
      'silent',
      undefined,
    ]);
    expect(desk.takeFailure('alipay')).toBe('balance');
    expect(() => desk.failNext('alipay', 'abnormal')).toThrow(/cannot fail as 'abnormal'/);
    expect(() => desk.failNext('paypal' as never, 'balance')).toThrow(/no such channel/);
    expect(() => desk.failNext('wechat', 'closed', 0)).toThrow(/times/);
  });

  it('runs jobs after their delay, waits for them (and for the jobs they schedule), and survives a job that throws', async () => {
    const desk = new RefundDesk();
    const ran: string[] = [];
    desk.later(30, () => {
      ran.push('slow');
      desk.later(0, () => {
        ran.push('scheduled by slow');
      });
    });
    desk.later(0, () => {
      ran.push('fast');
      throw new Error('the job records its own errors');
    });
    await desk.settled();
    expect(ran).toEqual(['fast', 'slow', 'scheduled by slow']);
    await desk.settled();
  });

  it('cancels the jobs not yet run when closed, and runs none scheduled after', async () => {
    const desk = new RefundDesk();
    const ran: string[] = [];
    let signal: AbortSignal | undefined;
    desk.later(0, async (s) => {
      signal = s;
      ran.push('ran');
    });
    await desk.settled();
    desk.later(60_000, () => {
      ran.push('too late');
    });
    const waiting = desk.settled();
    desk.close();
    await waiting;
    desk.later(0, () => {
      ran.push('after close');
    });
    await desk.settled();
    expect(ran).toEqual(['ran']);
    expect(signal?.aborted).toBe(true);
  });
});
