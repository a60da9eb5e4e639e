import type { Attempt } from '../../../lib/domain/model';
import { failedForWindow, failureReason, newRefund, nextCheckAt, refundNumber, refundWindowClosed } from '../../../lib/domain/refund';

const NOW = new Date('2026-11-29T08:00:00Z');
const attempt: Attempt = {
  outTradeNo: '501T17959349481161638',
  orderId: 501,
  userId: 1001,
  method: 4,
  cashFen: 8000,
  points: 800,
  addressId: 11,
  subject: '保温杯',
  createdAt: '2026-11-29T07:00:00.000Z',
  expiresAt: '2026-11-29T07:30:00.000Z',
  status: 'paid',
  address: { addressId: 11, userId: 1001, name: '张三', phone: '13800000000', province: '广东省', city: '深圳市', district: '南山区', detail: '1号' },
  paidAt: '2026-11-29T07:05:00.000Z',
  transactionId: '4200000001',
};

describe('refund numbers', () => {
  it('number the refunds of an attempt after its out_trade_no, the next one after the last', () => {
    expect(refundNumber(attempt.outTradeNo)).toBe(`${attempt.outTradeNo}R1`);
    expect(refundNumber(attempt.outTradeNo, `${attempt.outTradeNo}R1`)).toBe(`${attempt.outTradeNo}R2`);
    expect(refundNumber(attempt.outTradeNo, `${attempt.outTradeNo}R9`)).toBe(`${attempt.outTradeNo}R10`);
    expect(refundNumber(attempt.outTradeNo, `${attempt.outTradeNo}R12`)).toBe(`${attempt.outTradeNo}R13`);
  });

  it('stay within both gateways’ 64 characters for the longest out_trade_no', () => {
    expect(refundNumber('9007199254740991T17959349481161638', '9007199254740991T17959349481161638R99').length).toBeLessThanOrEqual(64);
  });
});

describe('follow-ups', () => {
  it('come every minute for five minutes, then 5, 10, 20 and 30 minutes apart, then hourly', () => {
    const gaps = Array.from({ length: 12 }, (_, checks) => (Date.parse(nextCheckAt(checks, NOW)) - NOW.getTime()) / 60_000);
    expect(gaps).toEqual([1, 1, 1, 1, 1, 5, 10, 20, 30, 60, 60, 60]);
  });
});

describe('refund windows', () => {
  it('close for WeChat a year after the payment, not a moment before', () => {
    const paidAt = '2025-11-29T08:00:00.000Z';
    expect(refundWindowClosed({ method: 1, paidAt }, new Date(Date.parse(paidAt) + 365 * 86_400_000 - 1))).toBe(false);
    expect(refundWindowClosed({ method: 4, paidAt }, new Date(Date.parse(paidAt) + 365 * 86_400_000))).toBe(true);
  });

  it('are left to Alipay (its window is in the merchant’s contract) and do not apply to points', () => {
    const paidAt = '2020-01-01T00:00:00.000Z';
    expect(refundWindowClosed({ method: 2, paidAt }, NOW)).toBe(false);
    expect(refundWindowClosed({ method: 3, paidAt }, NOW)).toBe(false);
  });

  it('are told apart from other failures by the recorded reason', () => {
    const closed = failureReason({ reason: 'ACQ.TRADE_HAS_FINISHED', windowClosed: true });
    expect(failedForWindow({ status: 'failed', failureReason: closed })).toBe(true);
    expect(failedForWindow({ status: 'failed', failureReason: failureReason({ reason: 'ABNORMAL' }) })).toBe(false);
    expect(failedForWindow({ status: 'pending', failureReason: closed })).toBe(false);
    expect(failedForWindow({ status: 'failed', failureReason: undefined })).toBe(false);
  });
});

describe('a new refund', () => {
  it('of an order gives back its whole cash and its points, pending until the gateway pays it out', () => {
    // Strictly: a refund that went through its gateway carries no repaidOutside at all.
    expect(newRefund(attempt, 'order', '用户取消', NOW)).toStrictEqual({
      outRefundNo: `${attempt.outTradeNo}R1`,
      outTradeNo: attempt.outTradeNo,
      orderId: 501,
      userId: 1001,
      kind: 'order',
      channel: 'wechat',
      cashFen: 8000,
      totalFen: 8000,
      points: 800,
      reason: '用户取消',
      status: 'pending',
      accepted: false,
      checks: 0,
      nextCheckAt: NOW.toISOString(),
      createdAt: NOW.toISOString(),
      refundedAt: undefined,
    });
  });

  it('of a refund case gives back only its cash: its points were never taken', () => {
    expect(newRefund({ ...attempt, status: 'refund_required' }, 'duplicate', '重复支付', NOW)).toMatchObject({ kind: 'duplicate', cashFen: 8000, points: 0 });
  });

  it('of points only is done the moment it is written', () => {
    expect(newRefund({ ...attempt, method: 3, cashFen: 0, points: 8800 }, 'order', '用户取消', NOW)).toMatchObject({
      channel: undefined,
      status: 'succeeded',
      points: 8800,
      refundedAt: NOW.toISOString(),
      nextCheckAt: undefined,
    });
  });

  it('after a failed one takes the next number', () => {
    expect(newRefund({ ...attempt, refundNo: `${attempt.outTradeNo}R1` }, 'order', '再次退款', NOW).outRefundNo).toBe(`${attempt.outTradeNo}R2`);
  });
});
