import { type OrderPrice, samePrice } from '../../../lib/domain/model';

/** An attempt quoted at one price never pays an order repriced since: `samePrice` decides "repriced". */
describe('samePrice', () => {
  const price: OrderPrice = {
    goodsFen: 8800,
    freeShipping: false,
    freightOptions: [
      { key: 1, name: '到付', feeFen: 0 },
      { key: 2, name: '商家自选', feeFen: 1200 },
    ],
  };
  const options = price.freightOptions;

  it('is the same price when goods, shipping and every freight option are (names may differ)', () => {
    expect(samePrice(price, { ...price, freightOptions: options.map((o) => ({ ...o })) })).toBe(true);
    expect(samePrice(price, { ...price, freightOptions: [options[0], { ...options[1], name: '顺丰' }] })).toBe(true);
  });

  it.each<[string, Partial<OrderPrice>]>([
    ['the goods', { goodsFen: 8801 }],
    ['free shipping', { freeShipping: true }],
    ['a freight fee', { freightOptions: [options[0], { ...options[1], feeFen: 1300 }] }],
    ['a freight key', { freightOptions: [options[0], { ...options[1], key: 3 }] }],
    ['an option fewer', { freightOptions: [options[0]] }],
    ['an option more', { freightOptions: [...options, { key: 3, name: '自提', feeFen: 0 }] }],
  ])('is another price when %s changed, either way round', (_what, change) => {
    const other = { ...price, ...change };
    expect(samePrice(price, other)).toBe(false);
    expect(samePrice(other, price)).toBe(false);
  });
});
