/**
 * The one rule for a number as it was sent (a form field, a query parameter, a JSON number kept as its
 * text by the body parser): ASCII digits only, no sign, no leading zero, no exponent, no decimal point,
 * no spaces. Amounts of yuan are this whole number with at most 2 decimals (`yuanToFen`).
 */
const WHOLE_NUMBER = /^(?:0|[1-9][0-9]*)$/;

/** Longer texts are refused before they are read: up to 15 digits a double holds exactly. */
const MAX_DIGITS = 15;

/**
 * Reads a whole number from its text, exactly, or returns undefined for anything the rule refuses
 * (`"01"`, `"-0"`, `"+1"`, `"1.0"`, `"1e2"`, `" 1"`, more than 15 digits, a value that is not text).
 *
 * @example wholeNumberFromText('501') === 501
 * @example wholeNumberFromText('0501') === undefined
 */
export function wholeNumberFromText(text: unknown): number | undefined {
  if (typeof text !== 'string' || text.length > MAX_DIGITS || !WHOLE_NUMBER.test(text)) return undefined;
  return Number(text);
}
