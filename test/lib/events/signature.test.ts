import { createHmac } from 'node:crypto';
import { SIGNATURE_TOLERANCE_SECONDS, signEvent, verifyEventSignature } from '../../../lib/events/signature';

/** The receiver's side of the `Paynow-Signature` header, on headers as a shop's framework may hand them over. */
const SECRET = 's'.repeat(40);
const BODY = '{"id":"evt_1","type":"order.paid","data":{"order_id":42,"amount":"88.00"}}';
const T = 1_790_000_000;
const at = (seconds: number) => new Date(seconds * 1000);
/** The v1 value for any `t`, computed the way the scheme defines it, so that headers the signer never writes can be built. */
const v1For = (t: string, body = BODY) => createHmac('sha256', SECRET).update(`${t}.${body}`, 'utf8').digest('hex');
const verify = (header: string, now = at(T)) => verifyEventSignature(header, BODY, SECRET, now);

it('the header the sender writes verifies', () => {
  expect(signEvent(BODY, [SECRET], at(T))).toBe(`t=${T},v1=${v1For(String(T))}`);
  expect(verify(signEvent(BODY, [SECRET], at(T)))).toBe(true);
});

it('while the key is rotated, signed under both, the new one first: a receiver holding either key accepts it, one holding neither does not', () => {
  const previous = 'p'.repeat(40);
  const header = signEvent(BODY, [SECRET, previous], at(T));
  expect(header).toBe(`t=${T},v1=${v1For(String(T))},v1=${createHmac('sha256', previous).update(`${T}.${BODY}`).digest('hex')}`);
  expect(verifyEventSignature(header, BODY, SECRET, at(T))).toBe(true);
  expect(verifyEventSignature(header, BODY, previous, at(T))).toBe(true);
  expect(verifyEventSignature(header, BODY, 'q'.repeat(40), at(T))).toBe(false);
});

it('spaces around the parts are accepted', () => {
  expect(verify(`t=${T}, v1=${v1For(String(T))}`)).toBe(true);
  expect(verify(` t=${T} ,  v1=${v1For(String(T))} `)).toBe(true);
});

it('the parts may come in any order', () => {
  expect(verify(`v1=${v1For(String(T))},t=${T}`)).toBe(true);
});

it('a signature exactly at the tolerance is accepted, either side of the clock; a millisecond beyond it is not', () => {
  const header = signEvent(BODY, [SECRET], at(T));
  expect(verify(header, at(T + SIGNATURE_TOLERANCE_SECONDS))).toBe(true);
  expect(verify(header, at(T - SIGNATURE_TOLERANCE_SECONDS))).toBe(true);
  expect(verify(header, new Date((T + SIGNATURE_TOLERANCE_SECONDS) * 1000 + 1))).toBe(false);
  expect(verify(header, new Date((T - SIGNATURE_TOLERANCE_SECONDS) * 1000 - 1))).toBe(false);
});

// Number() of such a `t` is NaN, which no distance from the clock exceeds: it would never expire.
it.each([`${T}x`, `x${T}`, `${T}.5`, `-${T}`, ''])('a t of %p is refused even when the v1 signs it', (t) => {
  expect(verify(`t=${t},v1=${v1For(t)}`)).toBe(false);
});

it('one valid v1 among several is enough (the secret being rotated)', () => {
  const valid = v1For(String(T));
  const other = createHmac('sha256', 'previous secret').update(`${T}.${BODY}`).digest('hex');
  expect(verify(`t=${T},v1=${other},v1=${valid}`)).toBe(true);
  expect(verify(`t=${T},v1=${valid},v1=${other}`)).toBe(true);
  expect(verify(`t=${T},v1=${other}`)).toBe(false);
});

it('only the v1 scheme counts: the right HMAC under another name is refused', () => {
  const valid = v1For(String(T));
  expect(verify(`t=${T},v0=${valid}`)).toBe(false);
  expect(verify(`t=${T},V1=${valid}`)).toBe(false);
  expect(verify(`t=${T},${valid}`)).toBe(false);
});

describe('a malformed v1 is refused, never thrown on', () => {
  const valid = v1For(String(T));
  it.each([
    ['empty', ''],
    ['cut short', valid.slice(0, 62)],
    ['one byte too long', `${valid}00`],
    ['junk after the HMAC', `${valid}zz`],
    ['junk before the HMAC', `zz${valid}`],
  ])('%s', (_, value) => {
    expect(verify(`t=${T},v1=${value}`)).toBe(false);
  });
});
