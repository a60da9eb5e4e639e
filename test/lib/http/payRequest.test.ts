import { PayError } from '../../../lib/domain/errors';
import { parseJsonNumbersAsText } from '../../../lib/http/jsonNumbersAsText';
import { parseOrderIdQuery, parsePayOrderBody } from '../../../lib/http/payRequest';

const valid = { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 };
const INTEGER_FIELDS = ['order_id', 'pay_method', 'pay_integral', 'address_id', 'freight_mode', 'freight_json_arr_key'] as const;

/** The body as parseBody hands JSON over: each number as the text it was sent as. */
const fromJson = (json: string) => parsePayOrderBody(parseJsonNumbersAsText(json));
/** The valid body as JSON text, with `field` written exactly as `raw` (a JSON number's own text, or a quoted string). */
const jsonWith = (field: string, raw: string) => JSON.stringify({ ...valid, [field]: '<raw>' }).replace('"<raw>"', raw);
/** The valid body as a form sends it: every field a string. */
const form = (fields: Record<string, unknown>) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));

function refusal(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(PayError);
    expect((error as PayError).code).toBe('INVALID_PARAM');
    return (error as PayError).message;
  }
  throw new Error('expected a refusal');
}

describe('parsePayOrderBody', () => {
  it('reads JSON numbers by their text, with money in fen', () => {
    expect(fromJson(JSON.stringify(valid))).toEqual({ orderId: 501, method: 1, priceFen: 10000, points: 0, addressId: 11, freightMode: 2, freightKey: 2 });
    for (const price of ['100', '100.0', '100.00', '"100"']) expect(fromJson(jsonWith('pay_price', price)).priceFen).toBe(10000);
  });

  it('reads numeric strings, as form bodies send them', () => {
    expect(parsePayOrderBody(form({ ...valid, pay_price: '12.5' }))).toMatchObject({ orderId: 501, priceFen: 1250, freightKey: 2 });
    expect(parsePayOrderBody(form({ ...valid, order_id: 2 ** 31 - 1, pay_price: '0', pay_integral: 0 }))).toMatchObject({ orderId: 2147483647, priceFen: 0 });
  });

  it('refuses a body whose numbers are already JS numbers: their text is gone, so they cannot be judged', () => {
    expect(refusal(() => parsePayOrderBody(valid))).toContain('order_id');
    expect(refusal(() => parsePayOrderBody({ ...form(valid), pay_price: 100 }))).toContain('pay_price');
  });

  it('freight_json_arr_key defaults to 0', () => {
    const { freight_json_arr_key: _omitted, ...rest } = valid;
    expect(fromJson(JSON.stringify(rest)).freightKey).toBe(0);
  });

  it.each(['order_id', 'pay_method', 'pay_price', 'pay_integral', 'address_id', 'freight_mode'])('names a missing %s', (field) => {
    const body: Record<string, unknown> = { ...valid };
    delete body[field];
    expect(refusal(() => fromJson(JSON.stringify(body)))).toContain(`缺少参数${field}`);
  });

  // The one rule (lib/domain/numberText.ts), on the quirks and their neighbours, for every integer field.
  const badIntegerTexts = [
    '01',
    '00',
    '-0',
    '-1',
    '+1',
    '1.0',
    '1.',
    '.5',
    '1e2',
    ' 1',
    '1 ',
    '١',
    '１',
    '0x1',
    '',
    '9007199254740993',
    '99999999999999999999',
  ];
  it.each(INTEGER_FIELDS.flatMap((field) => badIntegerTexts.map((text) => [field, text])))('refuses %s as the string %p, naming the field', (field, text) => {
    const message = refusal(() => parsePayOrderBody(form({ ...valid, [field]: text })));
    expect(message).toMatch(new RegExp(`^参数错误\\(${field}必须是\\d+到\\d+之间的整数,写作不带符号和前导0的数字\\)$`));
  });

  // Only what is valid JSON: `01`, `+1`, `.5` and `1.` are not, and are INVALID_BODY (test/functions/payOrder.test.ts).
  const badIntegerNumbers = ['-0', '-1', '1.0', '1E0', '1e2', '9007199254740993', '99999999999999999999', '2147483648'];
  it.each(INTEGER_FIELDS.flatMap((field) => badIntegerNumbers.map((raw) => [field, raw])))('refuses %s as the JSON number %s, never rounded', (field, raw) => {
    expect(refusal(() => fromJson(jsonWith(field, raw)))).toContain(`${field}必须是`);
  });

  it.each([
    ['order_id', '0'],
    ['order_id', '2147483648'],
    ['pay_method', '0'],
    ['pay_method', '6'],
    ['address_id', '0'],
    ['freight_mode', '3'],
    ['freight_json_arr_key', '3'],
    ['pay_integral', '2147483648'],
  ])('refuses %s = %p, out of its range', (field, text) => {
    expect(refusal(() => parsePayOrderBody(form({ ...valid, [field]: text })))).toContain(field);
  });

  it.each([
    '0100.00',
    '01',
    '00.50',
    '-0',
    '-0.00',
    '-1',
    '+1',
    '1e2',
    '99.999999999999999',
    '100.001',
    '100.',
    '.5',
    ' 100.00',
    '100.00 ',
    '١٠٠',
    '9007199254740993',
    '100000000.01',
  ])('refuses pay_price as the string %p', (text) => {
    expect(refusal(() => parsePayOrderBody(form({ ...valid, pay_price: text })))).toBe(
      '参数错误(pay_price必须是不小于0、最多两位小数的金额,写作不带符号和前导0的数字)',
    );
  });

  it.each(['99.999999999999999', '100.001', '-0', '-100', '1e2', '1E2', '1.00e2'])(
    'refuses pay_price as the JSON number %s, which a float would round',
    (raw) => {
      expect(refusal(() => fromJson(jsonWith('pay_price', raw)))).toContain('pay_price必须是不小于0、最多两位小数的金额');
    },
  );

  it.each(['true', 'null', '{}', '[]', '["100.00"]'])('refuses pay_price = %s', (raw) => {
    expect(refusal(() => fromJson(jsonWith('pay_price', raw)))).toContain('pay_price');
  });

  it.each(['null', '"text"', '42', '[]'])('refuses a body that is not an object: %s', (json) => {
    refusal(() => fromJson(json));
  });
});

describe('parseOrderIdQuery', () => {
  it('reads order_id', () => expect(parseOrderIdQuery({ order_id: '501' })).toBe(501));

  it.each(['01', '-0', '+1', '1.0', '1e2', ' 1', '١', '0', '2147483648', '9007199254740993'])('refuses order_id=%p by the same rule', (text) => {
    expect(refusal(() => parseOrderIdQuery({ order_id: text }))).toContain('order_id必须是1到2147483647之间的整数');
  });

  it('names a missing order_id', () => expect(refusal(() => parseOrderIdQuery({}))).toContain('缺少参数order_id'));
});
