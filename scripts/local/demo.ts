/** The demo requests `npm start` prints as curls; the HTTP tests send the same ones through serverless offline. */
export interface DemoRequest {
  title: string;
  token: string;
  body: Record<string, number | string>;
  /** What a correct answer carries. */
  expect: 'wechat' | 'alipay' | 'points' | 'token_expired';
}

export const DEMO_FIXTURE_FILE = `${__dirname}/../fixtures/demo.json`;

export const DEMO_REQUESTS: DemoRequest[] = [
  {
    title: 'WeChat Pay (order 501: 88.00 + 12.00 courier freight)',
    token: 'demo-1001',
    body: { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 },
    expect: 'wechat',
  },
  {
    title: 'Alipay (order 502: 199.00, free shipping)',
    token: 'demo-1001',
    body: { order_id: 502, pay_method: 2, pay_price: '199.00', pay_integral: 0, address_id: 11, freight_mode: 1 },
    expect: 'alipay',
  },
  {
    title: 'WeChat + 3000 points (order 503: 59.90, freight collected on delivery)',
    token: 'demo-1001',
    body: { order_id: 503, pay_method: 4, pay_price: '29.90', pay_integral: 3000, address_id: 11, freight_mode: 2, freight_json_arr_key: 1 },
    expect: 'wechat',
  },
  {
    title: 'Alipay + 1000 points (order 504: 128.00)',
    token: 'demo-1001',
    body: { order_id: 504, pay_method: 5, pay_price: '118.00', pay_integral: 1000, address_id: 11, freight_mode: 1 },
    expect: 'alipay',
  },
  {
    title: 'Points only (order 505: 45.00 = 4500 points)',
    token: 'demo-1002',
    body: { order_id: 505, pay_method: 3, pay_price: '0', pay_integral: 4500, address_id: 12, freight_mode: 1 },
    expect: 'points',
  },
  {
    title: 'An expired token',
    token: 'demo-expired',
    body: { order_id: 501, pay_method: 1, pay_price: '100.00', pay_integral: 0, address_id: 11, freight_mode: 2, freight_json_arr_key: 2 },
    expect: 'token_expired',
  },
];

export function demoCurl(api: string, request: DemoRequest): string {
  return `curl -s -X POST ${api}/order/pay -H 'content-type: application/json' -H 'token: ${request.token}' -d '${JSON.stringify(request.body)}'`;
}
