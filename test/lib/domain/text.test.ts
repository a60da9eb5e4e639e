import { firstCharacters } from '../../../lib/domain/text';

it('cuts text to a number of characters between code points, never inside an emoji', () => {
  expect(firstCharacters('用户取消订单', 4)).toBe('用户取消');
  expect(firstCharacters('退款😀好', 3)).toBe('退款😀');
  expect(firstCharacters('退😀', 1)).toBe('退');
  expect(firstCharacters('short', 80)).toBe('short');
});
