/**
 * closeUnpaidTrade against gateways that answer as told: where a close that does not say why it was
 * refused leaves the trade, asked of the query as a call of its own (the sweeping's cap and the metrics
 * count calls at the gateway's methods).
 */
import type { Channel } from '../../../lib/domain/model';
import { GatewayError, type PaymentGateway, type TradeState } from '../../../lib/gateways/paymentGateway';
import { closeUnpaidTrade } from '../../../lib/pay/closeTrade';

const refused = new GatewayError('alipay close failed: 40004 ACQ.TRADE_STATUS_ERROR');
const attempt = { outTradeNo: '501T1', method: 2 as const, createdAt: '2026-11-30T10:00:00.000Z' };
const now = new Date('2026-11-30T10:10:00.000Z');

/** Alipay answering the queries in turn with `states`, and the close with `close`; every call recorded. */
function alipayAnswering(states: TradeState[], close: () => Promise<void>) {
  const calls: string[] = [];
  const alipay = {
    channel: 'alipay',
    queryTrade: async () => {
      calls.push('queryTrade');
      return states.shift() as TradeState;
    },
    closeTrade: async () => {
      calls.push('closeTrade');
      return close();
    },
  } as unknown as PaymentGateway;
  return { calls, gateways: { alipay, wechat: {} as PaymentGateway } as Record<Channel, PaymentGateway> };
}

const unpaid: TradeState = { state: 'unpaid' };
const paid: TradeState = { state: 'paid', transactionId: '2026113022001', amountFen: 8800, paidAt: '2026-11-30T10:09:00+08:00' };

describe('a close refused without saying why (Alipay ACQ.TRADE_STATUS_ERROR)', () => {
  it.each([
    ['paid since the first query', 'paid', paid],
    ['closed since (or the close had gone through)', 'closed', { state: 'closed' } as TradeState],
  ] as const)('asks the query once more: a trade %s is %s', async (_what, outcome, since) => {
    const { calls, gateways } = alipayAnswering([unpaid, since], async () => Promise.reject(refused));
    expect(await closeUnpaidTrade(gateways, attempt, now)).toBe(outcome);
    expect(calls).toEqual(['queryTrade', 'closeTrade', 'queryTrade']);
  });

  it.each([
    ['still payable', unpaid],
    ['unknown to the gateway', { state: 'not_found' } as TradeState],
  ] as const)('a trade the query says is %s is the close error: nothing may go elsewhere yet', async (_what, since) => {
    const { calls, gateways } = alipayAnswering([unpaid, since], async () => Promise.reject(refused));
    await expect(closeUnpaidTrade(gateways, attempt, now)).rejects.toBe(refused);
    expect(calls).toEqual(['queryTrade', 'closeTrade', 'queryTrade']);
  });

  it('a fault of ours in the close is thrown as it is, with no query', async () => {
    const fault = new TypeError("Cannot read properties of undefined (reading 'code')");
    const { calls, gateways } = alipayAnswering([unpaid], async () => Promise.reject(fault));
    await expect(closeUnpaidTrade(gateways, attempt, now)).rejects.toBe(fault);
    expect(calls).toEqual(['queryTrade', 'closeTrade']);
  });

  it('a close that works is closed, in two calls', async () => {
    const { calls, gateways } = alipayAnswering([unpaid], async () => undefined);
    expect(await closeUnpaidTrade(gateways, attempt, now)).toBe('closed');
    expect(calls).toEqual(['queryTrade', 'closeTrade']);
  });
});
