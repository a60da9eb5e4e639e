import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { captureOutput, metricLines } from '../support/logs';
import { startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';

let stack: TestStack;
let handler: (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

beforeAll(async () => {
  stack = await startTestStack();
  Object.assign(process.env, stack.env);
  ({ handler } = (await import('../../functions/payOrder/handler')) as never);
  await stack.seed({
    users: [
      {
        user_id: 1,
        integral: 5000,
        tokens: [
          { token: 'good', expires_at: '2099-01-01T00:00:00+08:00' },
          { token: 'old', expires_at: '2020-01-01T00:00:00+08:00' },
        ],
      },
    ],
    addresses: [
      { address_id: 11, user_id: 1, name: '张三', phone: '13800000000', province: '广东省', city: '深圳市', district: '南山区', detail: '科技园1号' },
    ],
    orders: [
      {
        order_id: 501,
        user_id: 1,
        goods_name: '保温杯',
        goods_price: '88.00',
        free_shipping: false,
        freight_json: [
          { key: 1, name: '到付', fee: '0.00' },
          { key: 2, name: '商家自选', fee: '12.00' },
        ],
      },
      { order_id: 502, user_id: 1, goods_name: '耳机', goods_price: '199.00', free_shipping: true },
    ],
  });
});
afterAll(() => stack.close());

const wechatBody = { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 };

/** wechatBody as JSON text, with each given field written exactly as its raw text (a JSON number's own text, or a quoted string). */
function jsonWith(raw: Record<string, string>): string {
  let json = JSON.stringify({ ...wechatBody, ...Object.fromEntries(Object.keys(raw).map((field) => [field, `<${field}>`])) });
  for (const [field, text] of Object.entries(raw)) json = json.replace(`"<${field}>"`, text);
  return json;
}

/** wechatBody as an older app build sends it, a form. */
const formWith = (fields: Record<string, string>) =>
  new URLSearchParams({ ...Object.fromEntries(Object.entries(wechatBody).map(([k, v]) => [k, String(v)])), ...fields }).toString();

async function call(options: { token?: string; body?: string; contentType?: string; base64?: boolean }) {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.token = options.token;
  if (options.contentType) headers['Content-Type'] = options.contentType;
  const response = await handler(httpEvent({ path: '/order/pay', headers, body: options.body, base64: options.base64 }), lambdaContext);
  return { statusCode: response.statusCode, contentType: response.headers?.['content-type'], body: JSON.parse(response.body as string) };
}

describe('POST /order/pay (handler)', () => {
  it('logs the pay with its order and attempt, counts it, and writes no personal data', async () => {
    const {
      result: reply,
      lines,
      text,
    } = await captureOutput(() =>
      call({
        token: 'good',
        body: JSON.stringify({ ...wechatBody, order_id: 502, pay_price: '199.00', freight_mode: 1, freight_json_arr_key: 0 }),
        contentType: 'application/json',
      }),
    );
    expect(reply.body).toMatchObject({ status: 200 });
    expect(lines).toContainEqual(
      expect.objectContaining({ message: 'attempt opened', order_id: 502, out_trade_no: reply.body.data.out_trade_no, function_request_id: 'test-request' }),
    );
    expect(metricLines(lines, 'PayRequest')).toEqual([expect.objectContaining({ method: '1', outcome: 'ok' })]);
    for (const personal of ['张三', '13800000000', '科技园', '南山区']) expect(text).not.toContain(personal);
  });

  it('counts a refusal by its code, and logs only the code', async () => {
    const { lines } = await captureOutput(() =>
      call({ token: 'good', body: JSON.stringify({ ...wechatBody, pay_price: '1.00' }), contentType: 'application/json' }),
    );
    expect(metricLines(lines, 'PayRequest')).toEqual([expect.objectContaining({ method: '1', outcome: 'PRICE_MISMATCH' })]);
    expect(lines.filter((line) => line.level)).toEqual([
      expect.objectContaining({ level: 'INFO', message: 'request refused', code: 'PRICE_MISMATCH', order_id: 501 }),
    ]);
  });

  it('answers the WeChat envelope', async () => {
    const reply = await call({ token: 'good', body: JSON.stringify(wechatBody), contentType: 'application/json' });
    expect(reply.statusCode).toBe(200);
    expect(reply.contentType).toMatch(/^application\/json/);
    expect(reply.body).toMatchObject({
      status: 200,
      msg: '下单成功',
      data: { pay_param: { package: 'Sign=WXPay', partnerid: stack.credentials.wechat.mchid } },
    });
    expect(Object.keys(reply.body.data.pay_param).sort()).toEqual(['appid', 'noncestr', 'package', 'partnerid', 'prepayid', 'sign', 'timestamp']);
  });

  it('reads a JSON number by its text: 100.00 for pay_price is accepted as sent', async () => {
    const reply = await call({ token: 'good', body: jsonWith({ pay_price: '100.00' }), contentType: 'application/json' });
    expect(reply.body).toMatchObject({ status: 200, msg: '下单成功' });
  });

  it('reads a form body, plain or base64-encoded as API Gateway passes it', async () => {
    const form = new URLSearchParams({
      order_id: '502',
      pay_method: '2',
      pay_price: '199.00',
      pay_integral: '0',
      address_id: '11',
      freight_mode: '1',
    }).toString();
    for (const base64 of [false, true]) {
      const reply = await call({ token: 'good', body: form, contentType: 'application/x-www-form-urlencoded; charset=utf-8', base64 });
      expect(reply.body).toMatchObject({ status: 200, msg: '下单成功' });
      expect(typeof reply.body.data.pay_param).toBe('string');
    }
  });

  it.each([
    [undefined, 'TOKEN_MISSING', '请先登录'],
    ['', 'TOKEN_MISSING', '请先登录'],
    ['nobody', 'TOKEN_INVALID', '登录已失效,请重新登录'],
    ['old', 'TOKEN_EXPIRED', 'token过期'],
  ])('token %p -> %s', async (token, code, msg) => {
    const reply = await call({ token, body: JSON.stringify(wechatBody), contentType: 'application/json' });
    expect(reply).toMatchObject({ statusCode: 200, body: { status: 0, msg, code, data: [] } });
  });

  it.each([
    ['malformed JSON', '{"order_id":', 'application/json', 'INVALID_BODY'],
    ['no body', undefined, 'application/json', 'INVALID_BODY'],
    ['a JSON array', '[1]', 'application/json', 'INVALID_PARAM'],
    [
      'a multipart form (only JSON and urlencoded forms are read)',
      '--b\r\nContent-Disposition: form-data; name="order_id"\r\n\r\n501\r\n--b--\r\n',
      'multipart/form-data; boundary=b',
      'INVALID_BODY',
    ],
    ['freight_json_arr_key null (its default 0 is for a field left out)', jsonWith({ freight_json_arr_key: 'null' }), 'application/json', 'INVALID_PARAM'],
    ['a bad amount', JSON.stringify({ ...wechatBody, pay_price: '100.001' }), undefined, 'INVALID_PARAM'],
    ['a wrong amount', JSON.stringify({ ...wechatBody, pay_price: '99.99' }), 'application/json', 'PRICE_MISMATCH'],
  ])('%s is refused with the envelope and changes nothing', async (_title, body, contentType, code) => {
    const state = tableState(stack);
    const before = await state.snapshot();
    const reply = await call({ token: 'good', body, contentType });
    expect(reply.statusCode).toBe(200);
    expect(reply.body).toMatchObject({ status: 0, code, data: [] });
    expect(reply.body.msg).toMatch(/[\u4e00-\u9fa5]/);
    expect(JSON.stringify(reply.body)).not.toMatch(/at .*\.ts|Error:/);
    expect(await state.snapshot()).toEqual(before);
    state.close();
  });

  // Issue 11, input quirks: a number is judged by its text as sent, by one rule for leading zeros and signs.
  it.each([
    ['the JSON number 99.999999999999999 (a float makes it the 100.00 due)', jsonWith({ pay_price: '99.999999999999999' }), 'application/json', 'pay_price'],
    ['"0100.00" for pay_price', jsonWith({ pay_price: '"0100.00"' }), 'application/json', 'pay_price'],
    ['"0501" for order_id (read as 501 before)', jsonWith({ order_id: '"0501"' }), 'application/json', 'order_id'],
    ['"-0" for pay_integral', jsonWith({ pay_integral: '"-0"' }), 'application/json', 'pay_integral'],
    ['the JSON number -0 for pay_integral', jsonWith({ pay_integral: '-0' }), 'application/json', 'pay_integral'],
    ['the JSON number 1.0 for pay_method', jsonWith({ pay_method: '1.0' }), 'application/json', 'pay_method'],
    ['a JSON order_id beyond MAX_SAFE_INTEGER', jsonWith({ order_id: '9007199254740993' }), 'application/json', 'order_id'],
    ['a form with order_id=0501', formWith({ order_id: '0501' }), 'application/x-www-form-urlencoded', 'order_id'],
    ['a form with pay_price=0100.00', formWith({ pay_price: '0100.00' }), 'application/x-www-form-urlencoded', 'pay_price'],
    ['a form with pay_integral=-0', formWith({ pay_integral: '-0' }), 'application/x-www-form-urlencoded', 'pay_integral'],
  ])('%s is INVALID_PARAM naming the field, and changes nothing', async (_title, body, contentType, field) => {
    const state = tableState(stack);
    const before = await state.snapshot();
    const reply = await call({ token: 'good', body, contentType });
    expect(reply).toMatchObject({ statusCode: 200, body: { status: 0, code: 'INVALID_PARAM', data: [] } });
    expect(reply.body.msg).toMatch(new RegExp(`^参数错误\\(${field}必须是.*写作不带符号和前导0的数字\\)$`));
    expect(await state.snapshot()).toEqual(before);
    state.close();
  });

  it.each(['01', '+1', '.5', '1.'])('the JSON number %s is not JSON: INVALID_BODY', async (raw) => {
    const reply = await call({ token: 'good', body: jsonWith({ order_id: raw }), contentType: 'application/json' });
    expect(reply.body).toMatchObject({ status: 0, code: 'INVALID_BODY', msg: '请求格式错误', data: [] });
  });

  it('a fault of ours is an envelope too, logged whole but with no stack trace in the reply and no secret anywhere', async () => {
    await stack.dynamo.close(); // the database goes away
    const {
      result: reply,
      lines,
      text,
    } = await captureOutput(() => call({ token: 'good', body: JSON.stringify(wechatBody), contentType: 'application/json' }));
    expect(reply).toMatchObject({ statusCode: 500, body: { status: 0, code: 'INTERNAL_ERROR', msg: '系统繁忙,请稍后再试', data: [] } });
    expect(JSON.stringify(reply)).not.toMatch(/at |stack|ECONNREFUSED/);
    const failure = lines.find((line) => line.message === 'request failed');
    expect(failure).toMatchObject({ level: 'ERROR', function_request_id: 'test-request', cold_start: expect.any(Boolean), function_name: 'test' });
    expect(failure?.error).toMatchObject({ message: expect.stringContaining('ECONNREFUSED'), stack: expect.stringContaining('findSession') });
    expect(metricLines(lines, 'PayRequest')).toEqual([expect.objectContaining({ outcome: 'INTERNAL_ERROR', method: 'none', PayRequest: 1 })]);
    for (const secret of [stack.credentials.wechat.apiv3_key, 'PRIVATE KEY', '"good"', 'token-']) expect(text).not.toContain(secret);
  });
});
