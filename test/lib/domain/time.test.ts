import { parseGatewayTime, toBeijingDateTime, toBeijingRfc3339 } from '../../../lib/domain/time';

describe('gateway times', () => {
  it('reads WeChat RFC 3339 and Alipay Beijing wall time as the same instant', () => {
    expect(parseGatewayTime('2026-11-28T20:00:00+08:00')).toBe('2026-11-28T12:00:00.000Z');
    expect(parseGatewayTime('2026-11-28 20:00:00')).toBe('2026-11-28T12:00:00.000Z');
    expect(parseGatewayTime('2026-11-28 20:00:00.320')).toBe('2026-11-28T12:00:00.320Z'); // Alipay's gmt_refund
    expect(parseGatewayTime('not a time')).toBeUndefined();
    // Alipay's wall time only as the whole text: nothing before it, nothing after it.
    expect(parseGatewayTime('x2026-11-28 20:00:00')).toBeUndefined();
    expect(parseGatewayTime('2026-11-28 20:00:00x')).toBeUndefined();
    expect(parseGatewayTime(undefined)).toBeUndefined();
  });
  it('writes Beijing time whatever the process time zone', () => {
    const instant = new Date('2026-12-31T17:30:05Z');
    expect(toBeijingRfc3339(instant)).toBe('2027-01-01T01:30:05+08:00');
    expect(toBeijingDateTime(instant)).toBe('2027-01-01 01:30:05');
  });
});
