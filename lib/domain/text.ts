/**
 * At most `count` characters, cut between code points: a gateway's length limit never splits an emoji
 * into a lone surrogate, which is not valid UTF-8 and can get a whole request refused.
 *
 * @example firstCharacters('退款😀', 3) === '退款😀'
 */
export function firstCharacters(text: string, count: number): string {
  return Array.from(text).slice(0, count).join('');
}
