/**
 * Random text, and ids shaped like the ones WeChat Pay and Alipay hand out, so that a sandbox trade
 * reads like a real one in logs, in the database and in the tests' patterns.
 *
 * @example
 * const trade = { transactionId: wechatTransactionId(), payer: { openid: wechatOpenid() } };
 */
import { randomBytes, randomInt } from 'node:crypto';
import { toBeijingDateTime } from '../../lib/domain/time';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `count` random decimal digits. */
export function randomDigits(count: number): string {
  let out = '';
  for (let i = 0; i < count; i += 1) out += String(randomInt(10));
  return out;
}

/** Random string over [A-Za-z0-9]. */
export function randomAlphanumeric(count: number): string {
  let out = '';
  for (let i = 0; i < count; i += 1) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

/** yyyyMMddHHmmss in Beijing time: both gateways start their ids with the date they were made. */
function beijingDigits(): string {
  return toBeijingDateTime(new Date()).replace(/[- :]/g, '');
}

/** `wx` + yyyyMMddHHmmss + 20 hex digits. */
export const wechatPrepayId = (): string => `wx${beijingDigits()}${randomBytes(10).toString('hex')}`;

/** `4200` + 28 digits, the date among them. */
export const wechatTransactionId = (): string => `420000${randomDigits(4)}${beijingDigits().slice(0, 8)}${randomDigits(10)}`;

/** The payer's openid under the merchant's appid. */
export const wechatOpenid = (): string => `o${randomAlphanumeric(27)}`;

/** The `Request-ID` header of every WeChat Pay v3 answer. */
export const wechatRequestId = (): string => randomBytes(23).toString('hex').toUpperCase();

/** yyyyMMdd + `22001` + 15 digits. */
export const alipayTradeNo = (): string => `${beijingDigits().slice(0, 8)}22001${randomDigits(15)}`;

/** The buyer's account id and masked logon id. */
export const alipayBuyer = (): { buyerId: string; buyerLogonId: string } => ({
  buyerId: `2088${randomDigits(12)}`,
  buyerLogonId: `1${randomDigits(2)}****${randomDigits(4)}`,
});

/** `50` + 27 digits, the date among them: a WeChat `refund_id`. */
export const wechatRefundId = (): string => `500${randomDigits(7)}${beijingDigits().slice(0, 8)}${randomDigits(11)}`;
