import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { orderClosedEvent } from '../../lib/domain/events';
import { signEvent, verifyEventSignature } from '../../lib/events/signature';

/**
 * The README's verification snippet, as a shop would copy it, run against deliveries signed by
 * paynow's own code: it must accept what paynow sends (a rotation's two `v1` included) and refuse
 * what lib/events/signature.ts refuses, header for header.
 */
type Verify = (header: unknown, rawBody: string | Buffer, secret: string) => boolean;

function readmeSnippet(): Verify {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const after = readme.indexOf('Verify before parsing');
  const code = /```js\n([\s\S]*?)```/.exec(readme.slice(after))?.[1];
  if (after < 0 || !code) throw new Error('README: no js block after "Verify before parsing"');
  return new Function('require', `${code}\nreturn verify;`)(require) as Verify;
}

const verify = readmeSnippet();
const SECRET = 'n'.repeat(40);
const PREVIOUS = 'o'.repeat(40);
/** A real event's body, with Chinese text in it (the shop's reason): a body read as anything but UTF-8 fails. */
const body = JSON.stringify(orderClosedEvent({ orderId: 501, userId: 1001 }, '501T17959349481161638', '2026-11-29T08:53:17.000Z', '用户取消订单'));
const now = () => new Date();
const t = () => String(Math.floor(Date.now() / 1000));
const v1 = (secret: string, at: string, text = body) => createHmac('sha256', secret).update(`${at}.${text}`, 'utf8').digest('hex');

it('accepts what paynow sends, as text or as the raw bytes', () => {
  const header = signEvent(body, [SECRET], now());
  expect(verify(header, body, SECRET)).toBe(true);
  expect(verify(header, Buffer.from(body, 'utf8'), SECRET)).toBe(true);
});

it('during a rotation, a delivery signed under both keys is accepted with either; with neither, refused', () => {
  const header = signEvent(body, [SECRET, PREVIOUS], now());
  expect(verify(header, body, SECRET)).toBe(true);
  expect(verify(header, body, PREVIOUS)).toBe(true);
  expect(verify(header, body, 'q'.repeat(40))).toBe(false);
});

it('refuses a changed body, a changed time, an old delivery, and a body read as latin1', () => {
  const header = signEvent(body, [SECRET], now());
  expect(verify(header, body.replace('用户取消订单', '用户取消'), SECRET)).toBe(false);
  expect(
    verify(
      header.replace(/t=(\d+)/, (_, at: string) => `t=${Number(at) - 1}`),
      body,
      SECRET,
    ),
  ).toBe(false);
  expect(verify(signEvent(body, [SECRET], new Date(Date.now() - 301_000)), body, SECRET)).toBe(false);
  expect(verify(header, Buffer.from(body, 'utf8').toString('latin1'), SECRET)).toBe(false);
});

it('answers as lib/events/signature.ts does, header for header, and never throws', () => {
  const at = t();
  const valid = v1(SECRET, at);
  const headers: unknown[] = [
    undefined,
    '',
    `t=${at},v1=${valid}`,
    `t=${at}, v1=${valid}`,
    `v1=${valid},t=${at}`,
    `t=${at},v1=${v1(PREVIOUS, at)},v1=${valid}`,
    `t=${at},v1=${valid},v1=${v1(PREVIOUS, at)}`,
    `t=${at},v1=${valid.toUpperCase()}`,
    `t=${at},v1=${valid}zz`,
    `t=${at},v1=${valid.slice(0, 62)}`,
    `t=${at},v0=${valid}`,
    `t=${at}x,v1=${v1(SECRET, `${at}x`)}`,
    `v1=${valid}`,
    `t=${at},v1=`,
    `t=${at},v1`,
  ];
  const answers = headers.map((header) => [header, verify(header, body, SECRET)]);
  expect(answers).toEqual(headers.map((header) => [header, verifyEventSignature(header as string | undefined, body, SECRET, now())]));
  expect(answers.filter(([, ok]) => ok)).toHaveLength(5); // the valid ones above, in any form paynow's own check takes
});
