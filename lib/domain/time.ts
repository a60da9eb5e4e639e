/**
 * The gateways speak Beijing time (UTC+8, no daylight saving) whatever the process time zone is;
 * Lambda runs in UTC. These format explicitly instead of trusting TZ.
 */
const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;

/** What time it is: passed in wherever a decision or a record depends on it, so tests can move it. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

function beijingParts(date: Date): string {
  return new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString().slice(0, 19);
}

/** @example toBeijingRfc3339(new Date('2026-01-01T00:00:00Z')) === '2026-01-01T08:00:00+08:00' */
export function toBeijingRfc3339(date: Date): string {
  return `${beijingParts(date)}+08:00`;
}

/** @example toBeijingDateTime(new Date('2026-01-01T00:00:00Z')) === '2026-01-01 08:00:00' */
export function toBeijingDateTime(date: Date): string {
  return beijingParts(date).replace('T', ' ');
}

/**
 * A gateway's payment or refund time as an ISO instant: WeChat sends RFC 3339 with an offset, Alipay
 * `yyyy-MM-dd HH:mm:ss` (refund times with `.SSS`) in Beijing time. Undefined for anything else.
 */
export function parseGatewayTime(text: string | undefined): string | undefined {
  if (!text) return undefined;
  // Alipay's refund times carry milliseconds (`gmt_refund`): `2026-11-29 15:45:57.320`.
  const beijing = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)$/.exec(text);
  const ms = Date.parse(beijing ? `${beijing[1]}T${beijing[2]}+08:00` : text);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}
