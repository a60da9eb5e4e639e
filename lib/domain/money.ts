import { wholeNumberFromText } from './numberText';

/** Amounts inside the system are integer fen; yuan strings exist only at the edges. */
export type Fen = number;

/** Far above any real order, far below Number.MAX_SAFE_INTEGER. */
export const MAX_FEN: Fen = 100_000_000_00;

/** Yuan: a whole number as the rule in numberText.ts has it, then at most 2 decimals. */
const YUAN_PATTERN = /^([0-9]+)(?:\.([0-9]{1,2}))?$/;

/**
 * Parses a yuan amount as it was sent ("12", "12.5", "12.50") into fen, exactly: the digits are read
 * as text, never through floating point arithmetic. Only text: a JSON number is judged by the text
 * it was sent as (lib/http/jsonNumbersAsText.ts), never by the float it parses to.
 * Returns undefined for anything else (a sign, a leading zero, more than 2 decimals, an exponent,
 * spaces, more than MAX_FEN, a value that is not text).
 *
 * @example yuanToFen('12.30') === 1230
 * @example yuanToFen('012.30') === undefined
 */
export function yuanToFen(text: unknown): Fen | undefined {
  const match = typeof text === 'string' ? YUAN_PATTERN.exec(text) : null;
  const yuan = wholeNumberFromText(match?.[1]);
  if (!match || yuan === undefined) return undefined;
  const fen = yuan * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  return fen <= MAX_FEN ? fen : undefined;
}

/** @example fenToYuan(1230) === '12.30' */
export function fenToYuan(fen: Fen): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`not a fen amount: ${fen}`);
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}
