import { PayError } from '../../../lib/domain/errors';
import { parsePayOrderBody } from '../../../lib/http/payRequest';

const valid = { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 };

function messageOf(body: unknown): string {
  try {
    parsePayOrderBody(body);
  } catch (error) {
    expect(error).toBeInstanceOf(PayError);
    expect((error as PayError).code).toBe('INVALID_PARAM');
    return (error as PayError).message;
  }
  throw new Error('expected a refusal');
}

describe('parsePayOrderBody', () => {
  it('reads numbers, with money in fen', () => {
    expect(parsePayOrderBody(valid)).toEqual({ orderId: 501, method: 1, priceFen: 10000, points: 0, addressId: 11, freightMode: 2, freightKey: 2 });
  });

  it('reads numeric strings, as form bodies send them', () => {
    const form = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, String(v)]));
    expect(parsePayOrderBody({ ...form, pay_price: '12.5' })).toMatchObject({ orderId: 501, priceFen: 1250, freightKey: 2 });
  });

  it('freight_json_arr_key defaults to 0', () => {
    const { freight_json_arr_key: _omitted, ...rest } = valid;
    expect(parsePayOrderBody(rest).freightKey).toBe(0);
  });

  it.each(['order_id', 'pay_method', 'pay_price', 'pay_integral', 'address_id', 'freight_mode'])('names a missing %s', (field) => {
    const body: Record<string, unknown> = { ...valid };
    delete body[field];
    expect(messageOf(body)).toContain(`缺少参数${field}`);
  });

  it.each([
    ['order_id', 0],
    ['order_id', 1.5],
    ['order_id', '12abc'],
    ['order_id', 2 ** 31],
    ['pay_method', 0],
    ['pay_method', 6],
    ['pay_method', '1.0'],
    ['pay_price', '1.001'],
    ['pay_price', -1],
    ['pay_price', '1e2'],
    ['pay_price', true],
    ['pay_integral', -1],
    ['pay_integral', 0.5],
    ['freight_mode', 3],
    ['freight_json_arr_key', 3],
  ])('refuses %s = %p, naming the field', (field, value) => {
    expect(messageOf({ ...valid, [field]: value })).toContain(field);
  });

  it.each([null, 'text', 42, []])('refuses a body that is not an object: %p', (body) => {
    messageOf(body);
  });
});
