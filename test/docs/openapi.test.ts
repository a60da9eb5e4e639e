import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parse, parseDocument } from 'yaml';
import { ERRORS, type ErrorCode, PayError } from '../../lib/domain/errors';
import { alipayNotificationAnswer } from '../../lib/gateways/alipayNotifications';
import type { NotificationAnswer, NotificationVerdict } from '../../lib/gateways/paymentGateway';
import { wechatNotificationAnswer } from '../../lib/gateways/wechatNotifications';
import { envelope } from '../../lib/http/envelope';
import { CONTRACT_FILE, loadContract, type ObservedReply } from '../support/contract';

/**
 * docs/openapi.yaml against the code it describes, without a server: the routes serverless.yml
 * deploys, every error code with its message as the envelope renders it, every notification answer.
 * The HTTP tests (test/e2e/offline.test.ts) check every reply they receive against the same file.
 */
const contract = loadContract();
const document = parse(readFileSync(CONTRACT_FILE, 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, { enum?: string[]; properties?: { code?: { const?: string }; msg?: { const?: string; pattern?: string } } }> };
};

/** The envelope's reply when a handler throws `error`, as the function returns it to API Gateway. */
function refusalReply(error: Error): APIGatewayProxyStructuredResultV2 {
  const request = { event: {}, context: {}, response: undefined, error, internal: {} } as { response?: APIGatewayProxyStructuredResultV2 };
  envelope().onError?.(request as never);
  return request.response as APIGatewayProxyStructuredResultV2;
}

function asObserved(method: string, path: string, reply: { statusCode?: number; headers?: Record<string, unknown>; body?: string }): ObservedReply {
  return { method, path, status: reply.statusCode ?? 200, contentType: String(reply.headers?.['content-type'] ?? ''), body: reply.body ?? '' };
}

/** The per-code schema of the contract: `msg` fixed (`const`) or the code's message and a detail (`pattern`). */
function codeSchema(code: ErrorCode) {
  return Object.values(document.components.schemas).find((schema) => schema.properties?.code?.const === code);
}

describe('the contract and the code', () => {
  it('describes exactly the HTTP routes serverless.yml deploys', () => {
    const serverless = parseDocument(readFileSync(join(__dirname, '..', '..', 'serverless.yml'), 'utf8'), { logLevel: 'silent' }).toJS() as {
      functions: Record<string, { events?: { httpApi?: { method: string; path: string } }[] }>;
    };
    const deployed = Object.values(serverless.functions).flatMap((f) =>
      (f.events ?? []).flatMap((e) => (e.httpApi ? [`${e.httpApi.method.toUpperCase()} ${e.httpApi.path}`] : [])),
    );
    const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(deployed.sort());
  });

  it('lists the closed set of error codes of lib/domain/errors.ts, each in a schema of its own', () => {
    expect([...(document.components.schemas.ErrorCode.enum ?? [])].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const code of Object.keys(ERRORS) as ErrorCode[]) expect(codeSchema(code)).toBeDefined();
  });

  it.each(Object.keys(ERRORS).filter((code) => code !== 'INTERNAL_ERROR') as ErrorCode[])(
    '%s as the envelope renders it is a reply POST /order/pay may give',
    (code) => {
      const schema = codeSchema(code);
      // A code whose message takes a detail ("应付12.00元") is tested with one, the others without.
      const detail = schema?.properties?.msg?.pattern ? '应付12.00元' : undefined;
      expect(schema?.properties?.msg?.const ?? ERRORS[code]).toBe(ERRORS[code]);
      expect(contract.violations(asObserved('POST', '/order/pay', refusalReply(new PayError(code, detail))))).toEqual([]);
    },
  );

  it('answers an error of ours as INTERNAL_ERROR, HTTP 500, on both app routes', () => {
    const reply = refusalReply(new Error('the table is gone'));
    expect(reply.statusCode).toBe(500);
    expect(contract.violations(asObserved('POST', '/order/pay', reply))).toEqual([]);
    expect(contract.violations(asObserved('GET', '/order/pay/status', reply))).toEqual([]);
  });

  it('documents every answer the notification endpoints give', () => {
    const reasons = [
      'bad_signature',
      'unknown_serial',
      'stale',
      'malformed',
      'undecryptable',
      'merchant_mismatch',
      'missing_fields',
      'unknown_attempt',
      'amount_mismatch',
    ] as const;
    // Fails to compile when a reason is added to NotificationVerdict and not here.
    const everyReason: Exclude<Extract<NotificationVerdict, { kind: 'refused' }>['reason'], (typeof reasons)[number]> extends never ? true : never = true;
    expect(everyReason).toBe(true);
    const verdicts: NotificationVerdict[] = [{ kind: 'handled' }, { kind: 'retry' }, ...reasons.map((reason) => ({ kind: 'refused' as const, reason }))];
    const check = (path: string, answer: NotificationAnswer) => contract.violations(asObserved('POST', path, answer));
    for (const verdict of verdicts) {
      expect({ verdict, violations: check('/notify/wechat', wechatNotificationAnswer(verdict)) }).toEqual({ verdict, violations: [] });
      expect({ verdict, violations: check('/notify/alipay', alipayNotificationAnswer(verdict)) }).toEqual({ verdict, violations: [] });
    }
  });
});

describe('the contract checker', () => {
  const json = 'application/json; charset=utf-8';
  const paidStatus = {
    order_id: 503,
    order_status: 'paid',
    pay_method: 4,
    pay_price: '29.90',
    pay_integral: 3000,
    out_trade_no: '503T17959349484234756',
    paid_at: '2026-11-29T14:49:08+08:00',
  };
  const statusReply = (data: object, status = 200) => ({
    method: 'GET',
    path: '/order/pay/status?order_id=503',
    status,
    contentType: json,
    body: JSON.stringify({ status: 200, msg: 'ok', data }),
  });

  it('accepts a reply the contract describes', () => {
    expect(contract.violations(statusReply(paidStatus))).toEqual([]);
  });

  it.each([
    ['a renamed field', statusReply({ ...paidStatus, paid_at: undefined, paidAt: paidStatus.paid_at }), /required property 'paid_at'/],
    ['an extra field', statusReply({ ...paidStatus, channel: 'wechat' }), /additional properties: channel/],
    ['a value outside its set', statusReply({ ...paidStatus, order_status: 'refunded' }), /order_status must be equal to one of the allowed values/],
    ['a status the route does not answer', statusReply(paidStatus, 404), /HTTP 404, which the contract does not list/],
    ['a media type the response does not have', { ...statusReply(paidStatus), contentType: 'text/html' }, /content-type "text\/html"/],
    ['a body on a reply without content', { method: 'POST', path: '/notify/wechat', status: 204, contentType: json, body: '{}' }, /describes no body/],
    [
      'a route the contract does not have',
      { method: 'GET', path: '/order/pay', status: 200, contentType: json, body: '{}' },
      /GET \/order\/pay is not in the contract/,
    ],
    [
      "a message that is not its code's",
      {
        method: 'POST',
        path: '/order/pay',
        status: 200,
        contentType: json,
        body: JSON.stringify({ status: 0, msg: '订单不见了', code: 'ORDER_NOT_FOUND', data: [] }),
      },
      /PayRefusal > OrderNotFound/,
    ],
  ])('refuses %s', (_title, reply, reason) => {
    expect(contract.violations(reply).join('\n')).toMatch(reason);
  });
});
