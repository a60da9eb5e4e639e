import * as v from 'valibot';
import { PayError } from '../domain/errors';
import { MAX_ID, PAY_METHODS, type PayMethod } from '../domain/model';
import { yuanToFen } from '../domain/money';
import { wholeNumberFromText } from '../domain/numberText';
import type { PayOrderInput } from '../pay/payOrder';

/** How a number must be written, as the rule in lib/domain/numberText.ts has it. */
const AS_SENT = '写作不带符号和前导0的数字';

/**
 * A number judged by its text as sent (a form field, a query parameter, or a JSON number as
 * parseBody keeps it), read by `read`, refused with `message` when `read` refuses it.
 */
function numberField(message: string, read: (text: string) => number | undefined) {
  return v.pipe(
    v.string(message),
    v.check((text) => read(text) !== undefined, message),
    v.transform((text) => read(text) as number),
  );
}

/** An integer in [min, max]: `"01"`, `"-0"`, `"1.0"` and `1e2` are refused, never rounded. */
function integer(field: string, min: number, max: number) {
  return numberField(`${field}必须是${min}到${max}之间的整数,${AS_SENT}`, (text) => {
    const n = wholeNumberFromText(text);
    return n !== undefined && n >= min && n <= max ? n : undefined;
  });
}

/** Yuan with at most 2 decimals, into fen: `"0100.00"` and `99.999999999999999` are refused, never rounded. */
function yuan(field: string) {
  return numberField(`${field}必须是不小于0、最多两位小数的金额,${AS_SENT}`, yuanToFen);
}

const payOrderBody = v.object(
  {
    order_id: integer('order_id', 1, MAX_ID),
    pay_method: v.pipe(
      integer('pay_method', 1, 5),
      v.custom<number>((m) => PAY_METHODS.includes(m as PayMethod), 'pay_method不正确'),
      v.transform((m) => m as PayMethod),
    ),
    pay_price: yuan('pay_price'),
    pay_integral: integer('pay_integral', 0, MAX_ID),
    address_id: integer('address_id', 1, MAX_ID),
    freight_mode: integer('freight_mode', 1, 2),
    freight_json_arr_key: v.optional(integer('freight_json_arr_key', 0, 2), '0'),
  },
  '请求参数必须是对象',
);

/**
 * Turns the app's body into typed integers (money in fen), or refuses it with INVALID_PARAM
 * naming the first bad field. Every number is text here, as parseBody delivers it: a JS number
 * (its text already lost) is refused.
 */
export function parsePayOrderBody(body: unknown): PayOrderInput {
  const result = v.safeParse(payOrderBody, body ?? {});
  if (!result.success) {
    const issue = result.issues[0];
    const field = issue.path?.map((p) => String(p.key)).join('.');
    throw new PayError('INVALID_PARAM', field && issue.input === undefined ? `缺少参数${field}` : issue.message);
  }
  const b = result.output;
  return {
    orderId: b.order_id,
    addressId: b.address_id,
    method: b.pay_method,
    priceFen: b.pay_price,
    points: b.pay_integral,
    freightMode: b.freight_mode,
    freightKey: b.freight_json_arr_key,
  };
}

const statusQuery = v.object({ order_id: integer('order_id', 1, MAX_ID) }, '缺少参数order_id');

/** GET /order/pay/status?order_id=N */
export function parseOrderIdQuery(query: unknown): number {
  const result = v.safeParse(statusQuery, query ?? {});
  if (!result.success) {
    const issue = result.issues[0];
    throw new PayError('INVALID_PARAM', issue.input === undefined ? '缺少参数order_id' : issue.message);
  }
  return result.output.order_id;
}
