import { wholeNumberFromText } from '../../../lib/domain/numberText';

describe('wholeNumberFromText', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['10', 10],
    ['2147483647', 2147483647],
    ['999999999999999', 999999999999999], // 15 digits: still exact
  ])('%p -> %p', (text, n) => expect(wholeNumberFromText(text)).toBe(n));

  it.each([
    ['a leading zero', '01'],
    ['zeros only', '00'],
    ['a minus zero', '-0'],
    ['a sign', '-1'],
    ['a plus sign', '+1'],
    ['a decimal point', '1.0'],
    ['a trailing point', '1.'],
    ['no whole part', '.5'],
    ['an exponent', '1e2'],
    ['an upper-case exponent', '1E2'],
    ['a leading space', ' 1'],
    ['a trailing space', '1 '],
    ['a newline', '1\n'],
    ['Arabic-Indic digits', '١'],
    ['full-width digits', '１２'],
    ['a digit separator', '1_000'],
    ['a thousands comma', '1,000'],
    ['hex', '0x10'],
    ['empty', ''],
    ['16 digits', '1000000000000000'],
    ['beyond MAX_SAFE_INTEGER, which a double would round', '9007199254740993'],
  ])('refuses %s: %p', (_title, text) => expect(wholeNumberFromText(text)).toBeUndefined());

  it.each([1, 0, -0, 1.5, Number.NaN, null, undefined, true, {}, ['1']])('refuses a value that is not text: %p', (value) =>
    expect(wholeNumberFromText(value)).toBeUndefined(),
  );
});
