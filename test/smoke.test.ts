import middy from '@middy/core';
test('middy loads under jest', async () => {
  const h = middy(async (x: number) => x + 1);
  expect(await h(1, {} as never)).toBe(2);
});
