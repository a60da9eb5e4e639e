import { generateKeyPairSync } from 'node:crypto';
import { captureOutput, metricLines } from '../support/logs';
import { expectBalancedBooksThenClose, startTestStack, type TestStack } from '../support/stack';
import { tableState } from '../support/tableState';
import { givenUser, notifyHandlers, pay, sendWechat, signedWechat, storeWith, wechatTransaction } from '../support/world';

/** WeChat Pay v3 notifications, built as WeChat builds them: signed with the sandbox platform key, encrypted with the API v3 key. */
let stack: TestStack;
let state: ReturnType<typeof tableState>;
let handler: Awaited<ReturnType<typeof notifyHandlers>>['wechat'];

beforeAll(async () => {
  stack = await startTestStack();
  state = tableState(stack);
  handler = (await notifyHandlers(stack)).wechat;
});
afterAll(() => expectBalancedBooksThenClose(stack, () => state.close()));

/** An open WeChat + points attempt (800 points held, 80.00 cash) whose trade the sandbox then marks paid. */
async function paidAtGateway() {
  const user = await givenUser(stack, 1000);
  const attempt = await pay(stack, user, { method: 4, points: 800, priceFen: 8000 });
  stack.gateway.pay(attempt.outTradeNo);
  return { user, outTradeNo: attempt.outTradeNo };
}

describe('a genuine notification', () => {
  it('completes the payment in one step: attempt and order paid, held points spent, 204', async () => {
    const { user, outTradeNo } = await paidAtGateway();
    const transaction = wechatTransaction(stack, outTradeNo);
    const reply = await sendWechat(handler, signedWechat(stack, transaction));
    expect(reply).toEqual({ statusCode: 204, body: undefined });
    expect(await state.attempt(outTradeNo)).toMatchObject({
      status: 'paid',
      transaction_id: transaction.transaction_id,
      paid_at: new Date(transaction.success_time).toISOString(),
    });
    expect(await state.attempt(outTradeNo)).not.toHaveProperty('gsi1pk');
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
    expect((await state.ledger(user.userId)).map((e) => e.kind).sort()).toEqual(['capture', 'hold']);
  });

  it('a duplicate of a handled notification is acknowledged and changes nothing', async () => {
    const { outTradeNo } = await paidAtGateway();
    const notification = signedWechat(stack, wechatTransaction(stack, outTradeNo));
    expect((await sendWechat(handler, notification)).statusCode).toBe(204);
    const after = await state.snapshot();
    expect((await sendWechat(handler, notification)).statusCode).toBe(204);
    expect((await sendWechat(handler, signedWechat(stack, wechatTransaction(stack, outTradeNo)))).statusCode).toBe(204);
    expect(await state.snapshot()).toEqual(after);
  });

  it('10 identical notifications in parallel: paid once, points spent once', async () => {
    const { user, outTradeNo } = await paidAtGateway();
    const notification = signedWechat(stack, wechatTransaction(stack, outTradeNo));
    const replies = await Promise.all(Array.from({ length: 10 }, () => sendWechat(handler, notification)));
    expect(replies.map((r) => r.statusCode)).toEqual(Array(10).fill(204));
    expect(await state.account(user.userId)).toMatchObject({ integral_available: 200, integral_held: 0, integral_spent: 800 });
    expect((await state.ledger(user.userId)).filter((e) => e.kind === 'capture')).toHaveLength(1);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
  });

  it('works with a platform certificate too (certificate mode, several keys at once)', async () => {
    const { WechatSignatureVerifier } = await import('../../lib/gateways/wechatSignature');
    const { generateSandboxCredentials } = await import('../../scripts/sandbox/credentials');
    // A second key pair, published as a platform certificate beside the public key: rotation.
    const other = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
    const verifier = WechatSignatureVerifier.fromPem(
      [{ id: stack.credentials.wechat.platform_serial, pem: stack.credentials.wechat.platform_public_key_pem }],
      other.wechat.merchant_cert_pem,
    );
    const { X509Certificate } = await import('node:crypto');
    const serial = new X509Certificate(other.wechat.merchant_cert_pem).serialNumber;
    const body = '{"x":1}';
    const signed = signedWechat(stack, {}, { serial, signWithKeyPem: other.wechat.merchant_private_key_pem });
    const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(
      verifier.verify(
        { timestamp: headers['wechatpay-timestamp'], nonce: headers['wechatpay-nonce'], signature: headers['wechatpay-signature'], serial, body: signed.body },
        Date.now(),
      ),
    ).toBe('ok');
    expect(
      verifier.verify(
        { timestamp: headers['wechatpay-timestamp'], nonce: headers['wechatpay-nonce'], signature: headers['wechatpay-signature'], serial, body },
        Date.now(),
      ),
    ).toBe('bad_signature');
  });
});

describe('refused notifications change nothing and ask WeChat to send again', () => {
  async function expectRefused(notification: { headers: Record<string, string>; body: string }, statusCode: number) {
    const before = await state.snapshot();
    const reply = await sendWechat(handler, notification);
    expect(reply.statusCode).toBe(statusCode);
    expect(reply.body).toMatchObject({ code: 'FAIL', message: expect.any(String) });
    expect(await state.snapshot()).toEqual(before);
  }

  it('a tampered body', async () => {
    const { outTradeNo } = await paidAtGateway();
    const genuine = signedWechat(stack, wechatTransaction(stack, outTradeNo));
    await expectRefused({ ...genuine, body: genuine.body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS" ') }, 401);
  });

  it('a tampered ciphertext, even with a valid signature over it', async () => {
    const { outTradeNo } = await paidAtGateway();
    const genuine = JSON.parse(signedWechat(stack, wechatTransaction(stack, outTradeNo)).body);
    const sealed = Buffer.from(genuine.resource.ciphertext, 'base64');
    sealed[5] ^= 1;
    genuine.resource.ciphertext = sealed.toString('base64');
    const { wechatSignatureHeaders } = await import('../../scripts/sandbox/notifications');
    const body = JSON.stringify(genuine);
    await expectRefused({ headers: wechatSignatureHeaders(stack.credentials.wechat, body), body }, 400);
  });

  it('a tampered authentication tag, the ciphertext itself intact and the body signed', async () => {
    const { outTradeNo } = await paidAtGateway();
    const genuine = JSON.parse(signedWechat(stack, wechatTransaction(stack, outTradeNo)).body);
    const sealed = Buffer.from(genuine.resource.ciphertext, 'base64');
    sealed[sealed.length - 1] ^= 1; // the last byte of the 16-byte GCM tag
    genuine.resource.ciphertext = sealed.toString('base64');
    const { wechatSignatureHeaders } = await import('../../scripts/sandbox/notifications');
    const body = JSON.stringify(genuine);
    await expectRefused({ headers: wechatSignatureHeaders(stack.credentials.wechat, body), body }, 400);
  });

  it('signed with another key', async () => {
    const { outTradeNo } = await paidAtGateway();
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expectRefused(signedWechat(stack, wechatTransaction(stack, outTradeNo), { signWithKeyPem: forger }), 401);
  });

  it('an unknown serial', async () => {
    const { outTradeNo } = await paidAtGateway();
    await expectRefused(signedWechat(stack, wechatTransaction(stack, outTradeNo), { serial: 'PUB_KEY_ID_0000000000000000000000000000' }), 401);
  });

  it.each([6 * 60, -6 * 60])('a timestamp %p seconds off', async (offset) => {
    const { outTradeNo } = await paidAtGateway();
    await expectRefused(signedWechat(stack, wechatTransaction(stack, outTradeNo), { timestamp: Math.floor(Date.now() / 1000) + offset }), 401);
  });

  it.each([
    ['a wrong amount', { amount: { total: 7999, payer_total: 7999, currency: 'CNY', payer_currency: 'CNY' } }, 400],
    ['another appid', { appid: 'wx0000000000000000' }, 400],
    ['another mchid', { mchid: '1999999999' }, 400],
    ['an unknown out_trade_no', { out_trade_no: '999T17000000000000000' }, 404],
  ])('%s', async (_title, over, statusCode) => {
    const { outTradeNo } = await paidAtGateway();
    await expectRefused(signedWechat(stack, wechatTransaction(stack, outTradeNo, over)), statusCode);
  });
});

describe('non-success states', () => {
  it.each(['NOTPAY', 'CLOSED', 'PAYERROR', 'USERPAYING'])('trade_state %s is acknowledged and changes nothing', async (trade_state) => {
    const { outTradeNo } = await paidAtGateway();
    const before = await state.snapshot();
    expect((await sendWechat(handler, signedWechat(stack, wechatTransaction(stack, outTradeNo, { trade_state })))).statusCode).toBe(204);
    expect(await state.snapshot()).toEqual(before);
  });
});

describe('a fault of ours mid-notification', () => {
  it('answers 500 FAIL, so WeChat sends it again, and the resend completes the payment', async () => {
    const { notificationHandler } = await import('../../lib/http/notificationHandler');
    const { user, outTradeNo } = await paidAtGateway();
    const notification = signedWechat(stack, wechatTransaction(stack, outTradeNo));
    let failCapture = true;
    const store = storeWith(stack, {
      captureAttempt: async (...args) => {
        if (failCapture) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        return stack.app.store.captureAttempt(...args);
      },
    });
    const failing = notificationHandler({ ...stack.app, store }, 'wechat');
    const before = await state.snapshot();
    expect(await sendWechat(failing as never, notification)).toEqual({ statusCode: 500, body: { code: 'FAIL', message: '系统繁忙' } });
    expect(await state.snapshot()).toEqual(before);
    failCapture = false;
    expect((await sendWechat(failing as never, notification)).statusCode).toBe(204);
    expect(await state.order(user.orderId)).toMatchObject({ status: 'paid', paid_attempt: outTradeNo });
  });
});

describe('what the operators see', () => {
  it('a verified notification for another merchant is an error log and a merchant_mismatch metric, which alarms', async () => {
    const { outTradeNo } = await paidAtGateway();
    const { lines } = await captureOutput(() => sendWechat(handler, signedWechat(stack, wechatTransaction(stack, outTradeNo, { mchid: '1999999999' }))));
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'notification refused', reason: 'merchant_mismatch', out_trade_no: outTradeNo }),
    );
    const [refused] = metricLines(lines, 'NotificationRefused');
    expect(refused).toMatchObject({ channel: 'wechat', reason: 'merchant_mismatch', NotificationRefused: 1 });
    expect((refused._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions).toEqual([
      ['service', 'channel', 'reason'],
      ['service', 'reason'],
      ['service'],
    ]);
  });

  it('a payment of another amount is a mismatch, counted twice over: by the notification and by the completion', async () => {
    const { outTradeNo } = await paidAtGateway();
    const { lines } = await captureOutput(() =>
      sendWechat(
        handler,
        signedWechat(stack, wechatTransaction(stack, outTradeNo, { amount: { total: 7999, payer_total: 7999, currency: 'CNY', payer_currency: 'CNY' } })),
      ),
    );
    expect(metricLines(lines, 'Completion')).toEqual([expect.objectContaining({ outcome: 'mismatch' })]);
    expect(metricLines(lines, 'NotificationRefused')).toEqual([expect.objectContaining({ reason: 'amount_mismatch' })]);
    expect(lines).toContainEqual(
      expect.objectContaining({ message: 'payment does not match its attempt', amount_fen: 7999, expected_fen: 8000, function_request_id: 'test-request' }),
    );
  });

  it('every line of one invocation carries its out_trade_no, and the next invocation starts clean', async () => {
    const first = await paidAtGateway();
    const { lines } = await captureOutput(async () => {
      await sendWechat(handler, signedWechat(stack, wechatTransaction(stack, first.outTradeNo)));
      await sendWechat(handler, { headers: { 'Wechatpay-Serial': 'x' }, body: '{}' });
    });
    const logLines = lines.filter((line) => line.level);
    expect(logLines.find((line) => line.message === 'payment captured')).toMatchObject({ out_trade_no: first.outTradeNo, function_request_id: 'test-request' });
    const refusal = logLines.find((line) => line.message === 'notification refused');
    expect(refusal).toMatchObject({ reason: 'unknown_serial' });
    expect(refusal).not.toHaveProperty('out_trade_no');
  });
});

describe('issue 11: what a verified signature alone does not make ours', () => {
  it.each([
    ['in another currency', { amount: { total: 8000, payer_total: 8000, currency: 'USD', payer_currency: 'USD' } }],
    ['of another trade type', { trade_type: 'JSAPI' }],
  ])('a paid trade %s is refused (400) and pays nothing', async (_title, over) => {
    const { outTradeNo } = await paidAtGateway();
    const before = await state.snapshot();
    const { result, lines } = await captureOutput(() => sendWechat(handler, signedWechat(stack, wechatTransaction(stack, outTradeNo, over))));
    expect(result).toEqual({ statusCode: 400, body: { code: 'FAIL', message: '交易类型或币种不符' } });
    expect(await state.snapshot()).toEqual(before);
    expect(metricLines(lines, 'NotificationRefused').map((m) => m.reason)).toContain('unexpected_trade');
  });

  it.each([['null'], ['a list'], ['a number']])('a verified notification whose decrypted resource is %s is refused as malformed, not a crash', async (kind) => {
    const resource = { null: null, 'a list': [], 'a number': 7 }[kind];
    const before = await state.snapshot();
    const reply = await sendWechat(handler, signedWechat(stack, resource as unknown as object));
    expect(reply).toEqual({ statusCode: 400, body: { code: 'FAIL', message: '报文无法解析' } });
    expect(await state.snapshot()).toEqual(before);
  });

  it('a second verified success of a paid attempt under another transaction_id is kept for a person, once, and alarms', async () => {
    const { user, outTradeNo } = await paidAtGateway();
    const first = wechatTransaction(stack, outTradeNo);
    expect((await sendWechat(handler, signedWechat(stack, first))).statusCode).toBe(204);
    const order = await state.order(user.orderId);
    const other = { ...first, transaction_id: '4200009999202611290000000001' };
    const { result, lines } = await captureOutput(() => sendWechat(handler, signedWechat(stack, other)));
    expect(result.statusCode).toBe(204); // recorded: WeChat need not send it again
    expect((await sendWechat(handler, signedWechat(stack, other))).statusCode).toBe(204);
    const conflicts = (await state.snapshot()).filter((i) => i.entity === 'payment_conflict' && i.out_trade_no === outTradeNo);
    expect(conflicts).toEqual([
      expect.objectContaining({
        transaction_id: other.transaction_id,
        recorded_transaction_id: first.transaction_id,
        amount_fen: 8000,
        order_id: user.orderId,
      }),
    ]);
    expect(metricLines(lines, 'Completion').map((m) => m.outcome)).toEqual(['conflict']);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'a second payment of a paid attempt, under another transaction id',
        out_trade_no: outTradeNo,
        order_id: user.orderId,
        channel: 'wechat',
        transaction_id: other.transaction_id,
        recorded_transaction_id: first.transaction_id,
      }),
    );
    expect(await state.order(user.orderId)).toEqual(order);
    expect(await state.attempt(outTradeNo)).toMatchObject({ status: 'paid', transaction_id: first.transaction_id });
  });
});
