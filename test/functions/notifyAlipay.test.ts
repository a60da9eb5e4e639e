import { createSign } from 'node:crypto';
import { captureOutput, metricLines } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { alipayFields, givenUser, notifyHandlers, pay, sendAlipay, signedAlipay } from '../support/world';

/** Alipay asynchronous notifications, signed with the sandbox Alipay key as Alipay signs them. */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let handler: Awaited<ReturnType<typeof notifyHandlers>>['alipay'];

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  handler = (await notifyHandlers(stack)).alipay;
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** An open Alipay + points attempt: 300 points held, 85.00 in cash. */
async function openAttempt() {
  const user = await givenUser(stack, 300);
  const attempt = await pay(stack, user, { method: 5, points: 300, priceFen: 8500 });
  return { user, outTradeNo: attempt.outTradeNo };
}

it('a genuine TRADE_SUCCESS completes the payment and answers success', async () => {
  const { user, outTradeNo } = await openAttempt();
  const fields = alipayFields(outTradeNo, '85.00');
  expect(await sendAlipay(handler, signedAlipay(stack, fields))).toBe('success');
  expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid', transaction_id: fields.trade_no });
  expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
  expect(await state.account(user.userId)).toMatchObject({ integral_available: 0, integral_held: 0, integral_spent: 300 });
});

it('TRADE_FINISHED after TRADE_SUCCESS, and plain duplicates, answer success and change nothing', async () => {
  const { outTradeNo } = await openAttempt();
  expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00')))).toBe('success');
  const after = await state.snapshot();
  expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00')))).toBe('success');
  expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00', { trade_status: 'TRADE_FINISHED' })))).toBe('success');
  expect(await state.snapshot()).toEqual(after);
});

it('values with % and spaces verify (the body is decoded once, as checkNotifySignV2 expects)', async () => {
  const { outTradeNo } = await openAttempt();
  expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00', { subject: '100% 纯棉 T恤 +1' })))).toBe('success');
  expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
});

describe('refused: fail, nothing changes', () => {
  it.each([
    ['a tampered field', (body: string) => body.replace('total_amount=85.00', 'total_amount=0.01')],
    ['a forged signature', (body: string) => body.replace(/sign=[^&]+/, `sign=${encodeURIComponent(Buffer.alloc(256, 1).toString('base64'))}`)],
    ['no signature', (body: string) => body.replace(/&?sign=[^&]+/, '')],
  ])('%s', async (_title, tamper) => {
    const { outTradeNo } = await openAttempt();
    const before = await state.snapshot();
    expect(await sendAlipay(handler, tamper(signedAlipay(stack, alipayFields(outTradeNo, '85.00'))))).toBe('fail');
    expect(await state.snapshot()).toEqual(before);
  });

  it.each([
    ['a wrong amount', { total_amount: '84.99' }],
    ['another app_id', { app_id: '2021000000000000' }],
    ['another seller_id', { seller_id: '2088000000000000' }],
    ['an unknown out_trade_no', { out_trade_no: '999T17000000000000000' }],
  ])('%s (correctly signed)', async (_title, over) => {
    const { outTradeNo } = await openAttempt();
    const before = await state.snapshot();
    expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00', over)))).toBe('fail');
    expect(await state.snapshot()).toEqual(before);
  });
});

it.each(['WAIT_BUYER_PAY', 'TRADE_CLOSED'])('trade_status %s changes nothing and is acknowledged', async (trade_status) => {
  const { outTradeNo } = await openAttempt();
  const before = await state.snapshot();
  expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00', { trade_status })))).toBe('success');
  expect(await state.snapshot()).toEqual(before);
});

describe('issue 11: what a verified signature alone does not make ours', () => {
  /** A notification signed with Alipay's real key but RSA-SHA1 (`sign_type=RSA`), as alipay-sdk would accept it. */
  function signedSha1(fields: Record<string, string>): string {
    const { app_id, seller_id, alipay_private_key_pem } = stack.credentials.alipay;
    const unsigned: Record<string, string> = {
      notify_type: 'trade_status_sync',
      app_id,
      seller_id,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA',
      ...fields,
    };
    const content = Object.keys(unsigned)
      .filter((k) => k !== 'sign_type')
      .sort()
      .map((k) => `${k}=${unsigned[k]}`)
      .join('&');
    const sign = createSign('RSA-SHA1').update(content, 'utf8').sign(alipay_private_key_pem, 'base64');
    return new URLSearchParams({ ...unsigned, sign }).toString();
  }

  it('sign_type=RSA (SHA-1), correctly signed, is refused: only RSA2 is accepted', async () => {
    const { outTradeNo } = await openAttempt();
    const before = await state.snapshot();
    const { result, lines } = await captureOutput(() => sendAlipay(handler, signedSha1(alipayFields(outTradeNo, '85.00'))));
    expect(result).toBe('fail');
    expect(await state.snapshot()).toEqual(before);
    expect(metricLines(lines, 'NotificationRefused').map((m) => m.reason)).toContain('bad_signature');
  });

  it('a foreign auth_app_id is refused as another merchant’s', async () => {
    const { outTradeNo } = await openAttempt();
    const before = await state.snapshot();
    expect(await sendAlipay(handler, signedAlipay(stack, alipayFields(outTradeNo, '85.00', { auth_app_id: '2021000000000001' })))).toBe('fail');
    expect(await state.snapshot()).toEqual(before);
  });

  it('empty values are signed, as Alipay signs notifications (getSignCheckContentV1), and verify', async () => {
    const { outTradeNo } = await openAttempt();
    const body = signedAlipay(stack, alipayFields(outTradeNo, '85.00', { passback_params: '', body: '' }));
    expect(body).toContain('passback_params=&');
    expect(await sendAlipay(handler, body)).toBe('success');
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid' });
  });
});
