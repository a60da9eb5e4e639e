import { SandboxGatewayError } from '../../../scripts/sandbox/sandboxGatewayError';
import type { SandboxTrade } from '../../../scripts/sandbox/trade';
import { TradeBook } from '../../../scripts/sandbox/tradeBook';

function unpaid(channel: SandboxTrade['channel'], outTradeNo: string, extra: Partial<SandboxTrade> = {}): SandboxTrade {
  return { channel, outTradeNo, amountFen: 100, status: 'UNPAID', description: 'x', createdAt: new Date().toISOString(), request: {}, ...extra };
}

describe('TradeBook', () => {
  it('keeps one book per gateway, and refuses to guess when both hold the out_trade_no', () => {
    const trades = new TradeBook();
    trades.add(unpaid('wechat', 'BOTH_1'));
    expect(trades.find('BOTH_1')?.channel).toBe('wechat');
    trades.add(unpaid('alipay', 'BOTH_1'));
    expect(trades.get('alipay', 'BOTH_1')?.channel).toBe('alipay');
    expect(() => trades.find('BOTH_1')).toThrow(expect.objectContaining({ code: 'AMBIGUOUS_TRADE', httpStatus: 409 }));
    expect(() => trades.pay('BOTH_1')).toThrow(SandboxGatewayError);
  });

  it('refuses to pay an unpaid trade past its time_expire, and leaves it unpaid', () => {
    const trades = new TradeBook();
    trades.add(unpaid('wechat', 'EXPIRED_1', { timeExpire: '2020-01-01T00:00:00+08:00' }));
    expect(() => trades.pay('EXPIRED_1')).toThrow(expect.objectContaining({ code: 'TRADE_EXPIRED' }));
    expect(trades.snapshot('EXPIRED_1')?.status).toBe('UNPAID');
  });

  it('gives Alipay trades the payer, keeping the trade_no Alipay made when the order string was opened', () => {
    const trades = new TradeBook();
    trades.add(unpaid('alipay', 'ALI_1', { transactionId: '2026112922001000000000000001' }));
    expect(trades.pay('ALI_1')).toEqual({ channel: 'alipay', transactionId: '2026112922001000000000000001', amountFen: 100 });
    expect(trades.snapshot('ALI_1')?.payer).toEqual({
      buyerId: expect.stringMatching(/^2088\d{12}$/),
      buyerLogonId: expect.stringMatching(/^1\d{2}\*{4}\d{4}$/),
    });
    expect(trades.getAlipayByTradeNo('2026112922001000000000000001')?.outTradeNo).toBe('ALI_1');
  });
});

describe('TradeBook refund controls', () => {
  it('backdates and finishes paid trades only, and hands back copies', () => {
    const trades = new TradeBook();
    trades.add(unpaid('alipay', 'ALI_F', { transactionId: '2026112922001000000000000002' }));
    expect(() => trades.finishAlipayTrade('ALI_F')).toThrow(expect.objectContaining({ code: 'TRADE_NOT_PAID', httpStatus: 409 }));
    trades.pay('ALI_F');
    const finished = trades.finishAlipayTrade('ALI_F');
    expect(finished.finishedAt).toEqual(expect.any(String));
    expect(trades.finishAlipayTrade('ALI_F').finishedAt).toBe(finished.finishedAt);
    finished.status = 'CLOSED';
    expect(trades.snapshot('ALI_F')?.status).toBe('PAID');

    expect(trades.backdatePayment('ALI_F', new Date('2020-01-01T00:00:00Z')).paidAt).toBe('2020-01-01T00:00:00.000Z');
    expect(() => trades.backdatePayment('ALI_F', new Date('not a date'))).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    trades.add(unpaid('wechat', 'WX_F'));
    expect(() => trades.finishAlipayTrade('WX_F')).toThrow(expect.objectContaining({ code: 'TRADE_NOT_FOUND', httpStatus: 404 }));
    expect(trades.getByTransactionId('alipay', '2026112922001000000000000002')?.outTradeNo).toBe('ALI_F');
    expect(trades.getByTransactionId('wechat', '2026112922001000000000000002')).toBeUndefined();
  });
});
