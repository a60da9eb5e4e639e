import { parseJsonNumbersAsText } from '../../../lib/http/jsonNumbersAsText';

describe('parseJsonNumbersAsText', () => {
  it('keeps each number as the text it was sent as, where JSON.parse rounds it', () => {
    const json = '{"pay_price":99.999999999999999,"order_id":9007199254740993,"pay_integral":-0,"a":1.0,"b":1e2,"c":-1.5E-3}';
    expect(JSON.parse(json)).toMatchObject({ pay_price: 100, order_id: 9007199254740992, a: 1, b: 100 });
    expect(parseJsonNumbersAsText(json)).toEqual({
      pay_price: '99.999999999999999',
      order_id: '9007199254740993',
      pay_integral: '-0',
      a: '1.0',
      b: '1e2',
      c: '-1.5E-3',
    });
  });

  it('reaches numbers in arrays and nested objects, and leaves everything else as JSON.parse gives it', () => {
    expect(parseJsonNumbersAsText(' [ 1 , {"k" : [ -2 , true , false , null ] } , "3" ]\n')).toEqual(['1', { k: ['-2', true, false, null] }, '3']);
    expect(parseJsonNumbersAsText('42')).toBe('42');
  });

  it('never touches digits inside strings, escapes and all', () => {
    const value = { 'key 1': 'a\\"1", 2 \\', quote: '"', slash: '\\', unicode: '\u0031 中文 😀', tail: 'ends in a backslash\\' };
    const json = `${JSON.stringify(value).slice(0, -1)},"n":7}`;
    expect(parseJsonNumbersAsText(json)).toEqual({ ...value, n: '7' });
    expect(parseJsonNumbersAsText('{"u":"\\u0022 5"}')).toEqual({ u: '" 5' });
  });

  it.each(['', '{"order_id":', '{"a":01}', '{"a":+1}', '{"a":.5}', '{"a":1.}', '{"a":-}', '[1-2]', '{"a":1 2}', '{"a":0x10}', '{"a":NaN}'])(
    'throws a SyntaxError for what JSON.parse refuses, never rewrites it into JSON: %p',
    (json) => expect(() => parseJsonNumbersAsText(json)).toThrow(SyntaxError),
  );

  it('reads a string of 10 million characters (a regular expression that takes stack for each one overflows)', () => {
    const big = `{"note":"${'x'.repeat(9_999_998)}\\"","order_id":501}`;
    const parsed = parseJsonNumbersAsText(big) as { note: string; order_id: string };
    expect(parsed.order_id).toBe('501');
    expect(parsed.note).toHaveLength(9_999_999);
  });
});
