import * as v from 'valibot';
import { MAX_ID } from '../domain/model';
import { MAX_FEN, yuanToFen } from '../domain/money';
import { FreightKey } from '../domain/quote';

// The shop's commands (README "The shop's commands"), as its services send them to shopCommand. The
// order and address fields are those of the seed fixture, which is validated by these same schemas.

// Numbers: the Lambda runtime has parsed the command before it gets here, so a JSON number's text is
// gone (`1.0` and `1e2` are 1 and 100 by now). What the rule of lib/domain/numberText.ts can still see
// is checked: a safe integer (no rounded giant), at least 1 (no sign, no -0). Amounts are text, read by that rule.
const id = v.pipe(v.number('must be a number'), v.safeInteger('must be an integer'), v.minValue(1, 'must be 1 or more'));
/** An order's or address's id: one the app can send back (lib/http/payRequest.ts takes no larger). */
const appId = v.pipe(id, v.maxValue(MAX_ID, `must be at most ${MAX_ID}`));
/** Yuan as text, exactly as the app's amounts: "88", "88.5", "88.50". */
const yuan = (min: number) =>
  v.pipe(
    v.string('must be a yuan amount as text, like "88.00"'),
    v.check((s) => {
      const fen = yuanToFen(s);
      return fen !== undefined && fen >= min && fen <= MAX_FEN;
    }, 'must be a yuan amount as text, like "88.00"'),
    v.transform((s) => yuanToFen(s) as number),
  );
const text = (max: number) =>
  v.pipe(v.string('must be text'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(max, `must be at most ${max} characters`));
const time = v.pipe(
  v.string('must be an ISO 8601 time'),
  v.check(isIsoTimeWithOffset, 'must be an ISO 8601 time with its offset, one that exists'),
  v.transform((s) => new Date(s).toISOString()),
);

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Its offset required: without one, JavaScript reads the time in the machine's zone (UTC on Lambda,
 * +08:00 on a developer's machine), and a Beijing time would be read 8 hours off. And a time that
 * exists: Date.parse rolls an impossible one over (2099-02-30 is read as March 2nd, 24:00 as the next day).
 */
function isIsoTimeWithOffset(s: string): boolean {
  const parts = ISO_TIME.exec(s);
  if (!parts || Number.isNaN(Date.parse(s))) return false;
  // V8 refuses a 13th month, a day 0, minute or second 60; it takes days up to 31 in any month, and 24:00.
  const [, year, month, day, hour] = parts;
  return new Date(Date.UTC(Number(year), Number(month) - 1, Number(day))).getUTCMonth() === Number(month) - 1 && hour !== '24';
}

/** A command's own fields only: another is named, as a field the command does not have. */
const commandFields = <T extends v.ObjectEntries>(entries: T) => v.strictObject(entries, 'is not a field of this command');

const PAYABLE_FREIGHT_KEYS: readonly number[] = Object.values(FreightKey);

export const orderFields = {
  order_id: appId,
  user_id: id,
  goods_name: text(128),
  goods_price: yuan(1),
  free_shipping: v.boolean('must be true or false'),
  freight_json: v.optional(
    v.pipe(
      v.array(v.strictObject({ key: id, name: text(32), fee: yuan(0) }), 'must be a list'),
      v.maxLength(10, 'must have at most 10 options'),
      v.check((options) => new Set(options.map((o) => o.key)).size === options.length, 'must not repeat a key'),
    ),
    [],
  ),
};

export const addressFields = {
  address_id: appId,
  user_id: id,
  name: text(64),
  phone: v.pipe(v.string('must be text'), v.regex(/^\+?[0-9][0-9 -]{4,19}$/, 'must be a phone number')),
  province: text(32),
  city: text(32),
  district: v.pipe(v.string('must be text'), v.trim(), v.maxLength(32, 'must be at most 32 characters')),
  detail: text(128),
};

/** The shop's own id of a points movement: a retried command with the same id moves points once. */
const entryId = v.pipe(v.string('must be text'), v.regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ . : -'));
const pointsMove = { user_id: id, points: v.pipe(id, v.maxValue(1_000_000_000, 'must be at most 1000000000')), entry_id: entryId, reason: text(80) };
/**
 * As the app's `token` header carries it: printable ASCII, no space at either end (the header is read
 * trimmed, so a token stored with one, a newline from a shell say, could never log anyone in).
 */
const storedToken = v.pipe(v.string('must be text'), v.minLength(16, 'must be at least 16 characters'), v.maxLength(512, 'must be at most 512 characters'));
const token = v.pipe(
  storedToken,
  v.regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, 'must be printable ASCII without spaces at either end, as the token header carries it'),
);

const commandSchema = v.variant(
  'command',
  [
    v.pipe(
      commandFields({ command: v.literal('upsert-order'), ...orderFields }),
      v.forward(
        v.check(
          (order) => order.free_shipping || order.freight_json.some((o) => PAYABLE_FREIGHT_KEYS.includes(o.key)),
          'must offer key 1 (collected on delivery) or 2 (merchant courier) when free_shipping is false: the app can choose no other',
        ),
        ['freight_json'],
      ),
    ),
    commandFields({ command: v.literal('close-order'), order_id: appId, reason: v.optional(text(80)) }),
    commandFields({ command: v.literal('credit-points'), ...pointsMove }),
    commandFields({ command: v.literal('debit-points'), ...pointsMove }),
    commandFields({ command: v.literal('put-session'), token, user_id: id, expires_at: time }),
    // Any token a session may have been put with before the rule above, so it can still be shut out.
    commandFields({ command: v.literal('revoke-session'), token: storedToken }),
    commandFields({ command: v.literal('upsert-address'), ...addressFields }),
  ],
  'must be one of upsert-order, close-order, credit-points, debit-points, put-session, revoke-session, upsert-address',
);

export type ShopCommand = v.InferOutput<typeof commandSchema>;
export type UpsertOrder = Extract<ShopCommand, { command: 'upsert-order' }>;
export type UpsertAddress = Extract<ShopCommand, { command: 'upsert-address' }>;
export type PointsCommand = Extract<ShopCommand, { command: 'credit-points' | 'debit-points' }>;

/** A command checked field by field, or the first problem, naming its field. */
export function parseShopCommand(input: unknown): { ok: true; command: ShopCommand } | { ok: false; problem: string } {
  const result = v.safeParse(commandSchema, input);
  if (result.success) return { ok: true, command: result.output };
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join('.');
  return { ok: false, problem: path ? `${path} ${issue.message}` : issue.message };
}
