import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parse, parseDocument } from 'yaml';
import { ERRORS, type ErrorCode, PayError } from '../../lib/domain/errors';
import type { OrderStatus, RefundStatus } from '../../lib/domain/model';
import { alipayNotificationAnswer } from '../../lib/gateways/alipayNotifications';
import type { NotificationAnswer, NotificationVerdict } from '../../lib/gateways/paymentGateway';
import { wechatNotificationAnswer } from '../../lib/gateways/wechatNotificationEnvelope';
import { envelope } from '../../lib/http/envelope';
import type { PayStatus, RefundStatusView } from '../../lib/pay/payStatus';
import { CONTRACT_FILE, loadContract, type ObservedReply } from '../support/contract';

/**
 * docs/openapi.yaml against the code it describes, without a server: the routes serverless.yml
 * deploys, every error code with its message as the envelope renders it, the pay status's fields and
 * values, every notification answer, every example answer. The HTTP tests (test/e2e/offline.test.ts)
 * check every reply they receive against the same file.
 */
const contract = loadContract();

interface SchemaObject {
  const?: string;
  pattern?: string;
  enum?: string[];
  required?: string[];
  properties?: Record<string, SchemaObject>;
}
interface ResponseObject {
  $ref?: string;
  content?: Record<string, { examples?: Record<string, { value: unknown }> }>;
}
const document = parse(readFileSync(CONTRACT_FILE, 'utf8')) as {
  paths: Record<string, Record<string, { responses?: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, SchemaObject>; responses: Record<string, ResponseObject> };
};

/** `true` only when `Listed` names every member of `All`: a list that misses one fails to compile. */
type Covers<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;

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
      // A function whose events a script generates (the sweeper's schedules) has no HTTP route.
      (Array.isArray(f.events) ? f.events : []).flatMap((e) => (e.httpApi ? [`${e.httpApi.method.toUpperCase()} ${e.httpApi.path}`] : [])),
    );
    const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(deployed.sort());
  });

  it('lists every order status and refund status the code has', () => {
    const orderStatuses = ['unpaid', 'paying', 'paid', 'refunding', 'refunded', 'closed', 'cancelled'] as const satisfies readonly OrderStatus[];
    const refundStatuses = ['pending', 'succeeded', 'failed'] as const satisfies readonly RefundStatus[];
    // Fail to compile when a status is added to lib/domain/model.ts and not here.
    const everyOrderStatus: Covers<OrderStatus, (typeof orderStatuses)[number]> = true;
    const everyRefundStatus: Covers<RefundStatus, (typeof refundStatuses)[number]> = true;
    expect([everyOrderStatus, everyRefundStatus]).toEqual([true, true]);
    expect([...(document.components.schemas.OrderStatus.enum ?? [])].sort()).toEqual([...orderStatuses].sort());
    expect([...(document.components.schemas.OrderRefund.properties?.status?.enum ?? [])].sort()).toEqual([...refundStatuses].sort());
  });

  it('requires exactly the fields of the pay status and of its refund', () => {
    const payStatusFields = [
      'order_id',
      'order_status',
      'pay_method',
      'pay_price',
      'pay_integral',
      'out_trade_no',
      'paid_at',
      'refund',
    ] as const satisfies readonly (keyof PayStatus)[];
    const refundFields = ['status', 'refund_price', 'refund_integral', 'refunded_at'] as const satisfies readonly (keyof RefundStatusView)[];
    // Fail to compile when a field is added to lib/pay/payStatus.ts and not here.
    const everyPayStatusField: Covers<keyof PayStatus, (typeof payStatusFields)[number]> = true;
    const everyRefundField: Covers<keyof RefundStatusView, (typeof refundFields)[number]> = true;
    expect([everyPayStatusField, everyRefundField]).toEqual([true, true]);
    for (const [name, fields] of [
      ['PayStatus', payStatusFields],
      ['OrderRefund', refundFields],
    ] as const) {
      const schema = document.components.schemas[name];
      expect({ name, required: [...(schema.required ?? [])].sort() }).toEqual({ name, required: [...fields].sort() });
      expect({ name, properties: Object.keys(schema.properties ?? {}).sort() }).toEqual({ name, properties: [...fields].sort() });
    }
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
    type Reason = Extract<NotificationVerdict, { kind: 'refused' }>['reason'];
    const reasons = [
      'bad_signature',
      'unknown_serial',
      'stale',
      'malformed',
      'undecryptable',
      'merchant_mismatch',
      'missing_fields',
      'unknown_attempt',
      'unknown_refund',
      'amount_mismatch',
      'unexpected_trade',
    ] as const satisfies readonly Reason[];
    // Fails to compile when a reason is added to NotificationVerdict and not here.
    const everyReason: Covers<Reason, (typeof reasons)[number]> = true;
    expect(everyReason).toBe(true);
    const verdicts: NotificationVerdict[] = [{ kind: 'handled' }, { kind: 'retry' }, ...reasons.map((reason) => ({ kind: 'refused' as const, reason }))];
    const check = (path: string, answer: NotificationAnswer) => contract.violations(asObserved('POST', path, answer));
    // Each WeChat route's 404 names what it looks up (payments an attempt, refunds a refund) and only its own can occur there, so the other's is out of its contract.
    const only404: Partial<Record<Reason, string>> = { unknown_attempt: '/notify/wechat', unknown_refund: '/notify/wechat/refund' };
    for (const verdict of verdicts) {
      for (const path of ['/notify/wechat', '/notify/wechat/refund']) {
        const violations = check(path, wechatNotificationAnswer(verdict));
        const elsewhere = verdict.kind === 'refused' ? only404[verdict.reason] : undefined;
        if (elsewhere && elsewhere !== path) expect({ verdict, path, inContract: violations.length === 0 }).toEqual({ verdict, path, inContract: false });
        else expect({ verdict, path, violations }).toEqual({ verdict, path, violations: [] });
      }
      expect({ verdict, violations: check('/notify/alipay', alipayNotificationAnswer(verdict)) }).toEqual({ verdict, violations: [] });
    }
  });

  it('gives example answers the contract checker accepts', () => {
    const examples = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, operation]) =>
        Object.entries(operation.responses ?? {}).flatMap(([status, response]) => {
          const resolved = response.$ref ? document.components.responses[response.$ref.replace('#/components/responses/', '')] : response;
          return Object.entries(resolved.content ?? {}).flatMap(([mediaType, media]) =>
            Object.entries(media.examples ?? {}).map(([name, { value }]) => ({
              example: `${method.toUpperCase()} ${path} ${status} ${name}`,
              reply: {
                method,
                path,
                status: Number(status),
                contentType: mediaType,
                body: mediaType === 'application/json' ? JSON.stringify(value) : String(value),
              },
            })),
          );
        }),
      ),
    );
    expect(examples.map(({ example }) => example)).toEqual(
      expect.arrayContaining(['GET /order/pay/status 200 refunded', 'POST /notify/wechat/refund 404 unknown']),
    );
    for (const { example, reply } of examples) expect({ example, violations: contract.violations(reply) }).toEqual({ example, violations: [] });
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
    refund: null,
  };
  const refundedStatus = {
    ...paidStatus,
    order_status: 'refunded',
    refund: { status: 'succeeded', refund_price: '29.90', refund_integral: 3000, refunded_at: '2026-11-29T15:10:00+08:00' },
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
    expect(contract.violations(statusReply(refundedStatus))).toEqual([]);
  });

  it.each([
    ['a renamed field', statusReply({ ...paidStatus, paid_at: undefined, paidAt: paidStatus.paid_at }), /required property 'paid_at'/],
    ['an extra field', statusReply({ ...paidStatus, channel: 'wechat' }), /additional properties: channel/],
    ['a value outside its set', statusReply({ ...paidStatus, order_status: 'shipped' }), /order_status must be equal to one of the allowed values/],
    ['a missing nullable field', statusReply({ ...paidStatus, refund: undefined }), /required property 'refund'/],
    [
      'a refund amount in fen',
      statusReply({ ...refundedStatus, refund: { ...refundedStatus.refund, refund_price: 2990 } }),
      /\/refund\/refund_price must be string/,
    ],
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
