/** Reading what a request carries, answering "no" instead of throwing: each protocol words its own refusal. */

/** The body as a JSON object; undefined for anything else (not JSON, an array, null, a number). */
export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(body) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A `notify_url` both gateways accept: http(s), at most 256 characters. */
export function isHttpUrl(text: unknown): boolean {
  if (typeof text !== 'string' || text.length > 256) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
