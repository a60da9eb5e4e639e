import { fenToYuan, MAX_FEN, yuanToFen } from '../../../lib/domain/money';

describe('yuanToFen', () => {
  it.each([
    ['0', 0],
    ['0.01', 1],
    ['0.5', 50],
    ['12', 1200],
    ['12.3', 1230],
    ['12.30', 1230],
    ['19.99', 1999],
    ['100.00', 10000],
  ])('%p -> %p', (input, fen) => expect(yuanToFen(input)).toBe(fen));

  it.each([
    '-1',
    '-0',
    '+1',
    '1.234',
    '99.999999999999999', // what a float rounds to 100
    '1e3',
    '01',
    '0100.00',
    '00.50',
    ' 88.00',
    '88.00 ',
    '',
    '.5',
    '5.',
    'abc',
    '１２',
    '١',
    '1,000',
    '1_000',
  ])('refuses %p', (input) => expect(yuanToFen(input)).toBeUndefined());

  // A number's text is gone once it is a float (99.999999999999999 is 100 by now): only text is judged.
  it.each([12.3, 100, 0, Number('99.999999999999999'), 0.1 + 0.2, NaN, Infinity, null, undefined, true, {}])('refuses a value that is not text: %p', (input) =>
    expect(yuanToFen(input)).toBeUndefined(),
  );

  it('refuses amounts above the cap', () => {
    expect(yuanToFen(fenToYuan(MAX_FEN))).toBe(MAX_FEN);
    expect(yuanToFen('100000000.01')).toBeUndefined();
    expect(yuanToFen('10000000000.00')).toBeUndefined();
    expect(yuanToFen('9007199254740993.00')).toBeUndefined(); // beyond MAX_SAFE_INTEGER: refused, not rounded
  });

  it('is exact where floating point is not: every cent from 0.00 to 20.00', () => {
    for (let fen = 0; fen <= 2000; fen++) expect(yuanToFen(fenToYuan(fen))).toBe(fen);
  });
});

describe('fenToYuan', () => {
  it.each([
    [0, '0.00'],
    [1, '0.01'],
    [10, '0.10'],
    [1230, '12.30'],
    [8800, '88.00'],
  ])('%p -> %p', (fen, yuan) => expect(fenToYuan(fen)).toBe(yuan));

  it.each([-1, 1.5, NaN])('refuses %p, naming it', (fen) => expect(() => fenToYuan(fen)).toThrow(new RangeError(`not a fen amount: ${fen}`)));
});
