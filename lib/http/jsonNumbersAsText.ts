/**
 * In JSON already known to be valid, a string (escapes and all) or a number. Outside strings, only a
 * number starts with `-` or a digit. The string is an unrolled loop: the plain `(?:[^"\\]|\\.)*` takes
 * stack for every character and overflows on a string of about 9 million.
 */
const STRING_OR_NUMBER = /"[^"\\]*(?:\\[\s\S][^"\\]*)*"|-?[0-9][0-9.eE+-]*/g;

/**
 * Parses JSON with every number kept as the text it was sent as, a string, as form fields arrive:
 * `{"pay_price": 99.999999999999999}` gives `{pay_price: "99.999999999999999"}`, which a field's rule
 * can refuse, where JSON.parse gives 100. Node 20 cannot show a reviver the source text (Node 24 can);
 * this works on both. Throws JSON.parse's SyntaxError for anything that is not JSON.
 *
 * @example parseJsonNumbersAsText('{"order_id":501,"note":"1"}') // {order_id: '501', note: '1'}
 */
export function parseJsonNumbersAsText(json: string): unknown {
  return JSON.parse(quoteJsonNumbers(json));
}

/** The same JSON with each number written as a string of its text; throws JSON.parse's SyntaxError for anything that is not JSON. */
export function quoteJsonNumbers(json: string): string {
  // JSON.parse decides what is JSON: only valid JSON is rewritten, so `01`, `+1` or `.5` stay syntax errors.
  JSON.parse(json);
  return json.replace(STRING_OR_NUMBER, (token) => (token.startsWith('"') ? token : `"${token}"`));
}
