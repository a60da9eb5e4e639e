import { fenToYuan, MAX_FEN, yuanToFen } from '../../../lib/domain/money';

describe('yuanToFen', () => {
  it.each([
    ['0', 0],
    ['0.01', 1],
    ['12', 1200],
    ['12.3', 1230],
    ['12.30', 1230],
    [' 88.00 ', 8800],
    [12.3, 1230],
    [0.1 + 0.2, undefined], // 0.30000000000000004 is not a 2-decimal amount
    [19.99, 1999],
    [1.005, undefined], // three decimals, however the float prints
  ])('%p -> %p', (input, fen) => expect(yuanToFen(input)).toBe(fen));

  it.each(['-1', '1.234', '1e3', '01', '', '.5', '5.', 'abc', '１２', '1,000', NaN, Infinity, -0.5, 1e21, null, undefined, true, {}])('refuses %p', (input) =>
    expect(yuanToFen(input)).toBeUndefined(),
  );

  it('refuses amounts above the cap', () => {
    expect(yuanToFen(fenToYuan(MAX_FEN))).toBe(MAX_FEN);
    expect(yuanToFen('10000000000.00')).toBeUndefined();
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

  it.each([-1, 1.5, NaN])('refuses %p', (fen) => expect(() => fenToYuan(fen)).toThrow(RangeError));
});
