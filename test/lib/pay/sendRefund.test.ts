/**
 * sendRefund on a gateway of its own: which refund answers it takes as they are, which it asks the
 * deciding query for, and what a failed query leaves a person to read. (The Alipay adapter's real
 * answers run through it in test/lib/gateways/alipayRefund.test.ts.)
 */
import { GatewayError, type PaymentGateway, type RefundAnswer, type RefundState, type TradeState } from '../../../lib/gateways/paymentGateway';
import { sendRefund } from '../../../lib/pay/followUpRefund';

const request = { outTradeNo: '502T1', outRefundNo: '502T1R1', refundFen: 3000, totalFen: 8800, reason: '商品已售完' };

/** A gateway answering the refund with `answer`, and its queries with `refundQuery` and `tradeQuery`, recording its calls. */
function gatewayAnswering(answer: RefundAnswer, refundQuery?: () => Promise<RefundState>, tradeQuery?: () => Promise<TradeState>) {
  const calls: string[] = [];
  const unexpected = (name: string) => () => Promise.reject(new Error(`${name} was not expected`));
  const gateway = {
    channel: 'alipay',
    refund: async () => {
      calls.push('refund');
      return answer;
    },
    queryRefund: async () => {
      calls.push('queryRefund');
      return (refundQuery ?? unexpected('queryRefund'))();
    },
    queryTrade: async () => {
      calls.push('queryTrade');
      return (tradeQuery ?? unexpected('queryTrade'))();
    },
  } as unknown as PaymentGateway;
  return { gateway, calls };
}

const paid = { state: 'paid', transactionId: 't1', amountFen: 8800, paidAt: '2026-11-28 20:00:01' } as const;

describe('sendRefund', () => {
  it.each<RefundAnswer>([
    { state: 'succeeded', refundedAt: '2026-11-28T12:00:05.000Z' },
    { state: 'processing' },
    { state: 'failed', reason: 'CLOSED' },
    { state: 'abnormal' },
  ])('takes %o as it is, in one call', async (answer) => {
    const { gateway, calls } = gatewayAnswering(answer);
    expect(await sendRefund(gateway, request)).toEqual(answer);
    expect(calls).toEqual(['refund']);
  });

  it.each<[string, RefundState, RefundState]>([
    ['carried out', { state: 'succeeded', refundedAt: '2026-11-27T01:30:00.000Z' }, { state: 'succeeded', refundedAt: '2026-11-27T01:30:00.000Z' }],
    ['not carried out (yet)', { state: 'not_found' }, { state: 'processing' }],
    ['processing', { state: 'processing' }, { state: 'processing' }],
  ])('unconfirmed: the refund query decides; %s', async (_what, queried, result) => {
    const { gateway, calls } = gatewayAnswering({ state: 'unconfirmed' }, async () => queried);
    expect(await sendRefund(gateway, request)).toEqual(result);
    expect(calls).toEqual(['refund', 'queryRefund']);
  });

  it.each<[string, TradeState, RefundState | string]>([
    [
      'paid and past its refund period',
      { ...paid, windowClosed: true },
      { state: 'failed', reason: 'ACQ.TRADE_STATUS_ERROR: paid, past its refund period', windowClosed: true },
    ],
    ['closed', { state: 'closed' }, { state: 'failed', reason: 'ACQ.TRADE_STATUS_ERROR: closed, refunded in full already' }],
    ['paid, still refundable', paid, 'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is paid'],
    ['unpaid', { state: 'unpaid' }, 'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is unpaid'],
    ['unknown to the gateway', { state: 'not_found' }, 'alipay refund refused (ACQ.TRADE_STATUS_ERROR) while the trade is not_found'],
  ])('refused for the trade state: the trade query decides; %s', async (_what, trade, result) => {
    const { gateway, calls } = gatewayAnswering({ state: 'refused_for_trade_state', reason: 'ACQ.TRADE_STATUS_ERROR' }, undefined, async () => trade);
    const settled = sendRefund(gateway, request);
    if (typeof result === 'string') await expect(settled).rejects.toEqual(new GatewayError(result));
    else expect(await settled).toEqual(result);
    expect(calls).toEqual(['refund', 'queryTrade']);
  });

  it("a query that fails at the gateway is a GatewayError saying what it was asked after, its cause the query's own error", async () => {
    const queryFailure = new GatewayError('alipay refund query failed: 40004 ACQ.SYSTEM_ERROR');
    const { gateway } = gatewayAnswering({ state: 'unconfirmed' }, async () => Promise.reject(queryFailure));
    const failure = await sendRefund(gateway, request).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({
      message: 'alipay refund taken without moving money; then alipay refund query failed: 40004 ACQ.SYSTEM_ERROR',
      cause: queryFailure,
    });
  });

  it('a trade query that fails after a refusal says which refusal it was asked after', async () => {
    const queryFailure = new GatewayError('alipay trade query failed: 20000 isp.unknow-error');
    const { gateway } = gatewayAnswering({ state: 'refused_for_trade_state', reason: 'ACQ.TRADE_STATUS_ERROR' }, undefined, async () =>
      Promise.reject(queryFailure),
    );
    const failure = await sendRefund(gateway, request).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({
      message: 'alipay refund refused (ACQ.TRADE_STATUS_ERROR); then alipay trade query failed: 20000 isp.unknow-error',
      cause: queryFailure,
    });
  });

  it('a query that fails otherwise (a fault of ours) is thrown as it is, never taken for a gateway error to retry', async () => {
    const fault = new TypeError("Cannot read properties of undefined (reading 'tradeStatus')");
    const { gateway } = gatewayAnswering({ state: 'refused_for_trade_state', reason: 'ACQ.TRADE_STATUS_ERROR' }, undefined, async () => Promise.reject(fault));
    await expect(sendRefund(gateway, request)).rejects.toBe(fault);
  });
});
