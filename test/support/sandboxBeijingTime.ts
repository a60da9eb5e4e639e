import { toBeijingDateTime } from '../../lib/domain/time';

/**
 * `yyyy-MM-dd HH:mm:ss` in Beijing time, now by default: the `timestamp` the sandbox's Alipay
 * takes, which alipay-sdk would stamp in the process time zone instead.
 *
 * @example
 * sdk.exec('alipay.trade.query', { bizContent, timestamp: beijingDateTime() }, { validateSign: true });
 */
export const beijingDateTime = (date: Date = new Date()): string => toBeijingDateTime(date);
