/** Amounts inside the system are integer fen; yuan strings exist only at the edges. */
export type Fen = number;

/** Far above any real order, far below Number.MAX_SAFE_INTEGER. */
export const MAX_FEN: Fen = 100_000_000_00;

const YUAN_PATTERN = /^(0|[1-9]\d{0,9})(?:\.(\d{1,2}))?$/;

/**
 * Parses a yuan amount as the app sends it ("12", "12.5", "12.50", 12.5) into fen, exactly:
 * decimal digits are read as text, never through floating point arithmetic.
 * Returns undefined for anything else (negative, more than 2 decimals, exponent notation, junk).
 *
 * @example yuanToFen('12.30') === 1230
 */
export function yuanToFen(value: unknown): Fen | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value;
  if (typeof text !== 'string') return undefined;
  const match = YUAN_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const fen = Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  return fen <= MAX_FEN ? fen : undefined;
}

/** @example fenToYuan(1230) === '12.30' */
export function fenToYuan(fen: Fen): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`not a fen amount: ${fen}`);
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}
