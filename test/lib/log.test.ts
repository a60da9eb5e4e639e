import { generateKeyPairSync } from 'node:crypto';
import { systemClock } from '../../lib/domain/time';
import { AlipayGateway } from '../../lib/gateways/alipay';
import { describeError, log } from '../../lib/log';
import { captureOutput } from '../support/logs';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => stack.close());

describe('a logged error', () => {
  it('keeps name, message, code, stack and the cause chain, and nothing else a library hung on it', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', request: { headers: { authorization: 'secret' } } });
    const failure = Object.assign(new Error('query failed', { cause: reset }), { name: 'GatewayError', responseDataRaw: '{"buyer_logon_id":"138****0000"}' });
    const { lines, text } = await captureOutput(async () => log.error('sweep of attempt failed', { out_trade_no: '1T1' }, failure));
    expect(lines[0]).toMatchObject({
      level: 'ERROR',
      out_trade_no: '1T1',
      error: {
        name: 'GatewayError',
        message: 'query failed',
        stack: expect.any(String),
        cause: { name: 'Error', message: 'socket hang up', code: 'ECONNRESET' },
      },
    });
    expect(text).not.toMatch(/buyer_logon_id|authorization|secret/);
  });

  it("of the Alipay SDK never carries the gateway's answer, which names the buyer", async () => {
    // A wrong Alipay public key (a rotation gone wrong): every signed answer fails verification.
    const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const { alipay } = stack.credentials;
    const options = {
      appId: alipay.app_id,
      appPrivateKeyPem: alipay.app_private_key_pem,
      alipayPublicKeyPem: alipay.alipay_public_key_pem,
      gatewayUrl: alipay.gateway_url,
      notifyUrl: 'http://127.0.0.1:1/notify/alipay',
      now: systemClock,
    };
    const gateway = new AlipayGateway({ ...options, alipayPublicKeyPem: wrongKey });
    const good = new AlipayGateway(options);
    const outTradeNo = `77T${Date.now()}`;
    stack.gateway.registerAlipayOrder(await good.createPayParam({ outTradeNo, amountFen: 100, subject: 'x', expiresAt: new Date(Date.now() + 600_000) }));
    stack.gateway.pay(outTradeNo);
    const error = await gateway.queryTrade(outTradeNo).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'GatewayError' });
    const logged = JSON.stringify(describeError(error));
    expect(logged).toContain('AlipayRequestError');
    const trade = stack.gateway.trade(outTradeNo);
    for (const buyer of [trade?.payer?.buyerId, trade?.payer?.buyerLogonId, trade?.transactionId]) {
      expect(buyer).toBeTruthy();
      expect(logged).not.toContain(buyer);
    }
  });
});
