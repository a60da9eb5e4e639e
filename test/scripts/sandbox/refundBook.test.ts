import { RefundBook } from '../../../scripts/sandbox/refundBook';
import type { SandboxTrade } from '../../../scripts/sandbox/trade';

function paid(channel: SandboxTrade['channel'], outTradeNo: string, amountFen = 1000): SandboxTrade {
  const now = new Date().toISOString();
  return { channel, outTradeNo, amountFen, status: 'PAID', description: 'x', createdAt: now, paidAt: now, transactionId: `T_${outTradeNo}`, request: {} };
}

describe('RefundBook', () => {
  it('counts PROCESSING, SUCCESS and ABNORMAL refunds against the trade (an abnormal one waits at WeChat), and gives back what ends CLOSED', () => {
    const book = new RefundBook();
    const trade = paid('wechat', 'WX_1');
    const a = book.open(trade, { outRefundNo: 'RA', amountFen: 300, request: {} });
    const b = book.open(trade, { outRefundNo: 'RB', amountFen: 200, request: {} });
    const c = book.open(trade, { outRefundNo: 'RC', amountFen: 100, request: {} });
    expect(book.refundableFen(trade)).toBe(400);
    book.settle(trade, a, 'SUCCESS');
    book.settle(trade, b, 'CLOSED');
    book.settle(trade, c, 'ABNORMAL');
    expect(book.refundableFen(trade)).toBe(600);
    expect(trade.refundedFen).toBe(300);
    // Sent on by the merchant, the abnormal one is PROCESSING again, then succeeds; only an ABNORMAL one resumes.
    expect(book.resume(a)).toBe(false);
    expect(book.resume(c)).toBe(true);
    expect(c.status).toBe('PROCESSING');
    book.settle(trade, c, 'SUCCESS');
    expect(trade.refundedFen).toBe(400);
    expect(book.refundableFen(trade)).toBe(600);
    expect(a).toMatchObject({ status: 'SUCCESS', succeededAt: expect.any(String), refundId: expect.stringMatching(/^50\d{27}$/) });
    expect(b.succeededAt).toBeUndefined();
  });

  it('settles a refund once: settling it again changes nothing', () => {
    const book = new RefundBook();
    const trade = paid('wechat', 'WX_2');
    const refund = book.open(trade, { outRefundNo: 'R1', amountFen: 500, request: {} });
    book.settle(trade, refund, 'SUCCESS');
    book.settle(trade, refund, 'SUCCESS');
    book.settle(trade, refund, 'CLOSED');
    expect(refund.status).toBe('SUCCESS');
    expect(trade.refundedFen).toBe(500);
  });

  it("numbers WeChat refunds per merchant and Alipay's per trade; gives copies, oldest first", () => {
    const book = new RefundBook();
    const one = paid('alipay', 'ALI_1');
    const two = paid('alipay', 'ALI_2');
    book.open(one, { outRefundNo: 'R1', amountFen: 1, request: { n: 1 } });
    book.open(two, { outRefundNo: 'R1', amountFen: 2, request: {} });
    expect(book.get('alipay', 'ALI_1', 'R1')?.amountFen).toBe(1);
    expect(book.get('alipay', 'ALI_2', 'R1')?.amountFen).toBe(2);
    expect(book.get('alipay', 'ALI_1', 'R1')?.refundId).toBeUndefined();
    const wechat = paid('wechat', 'WX_3');
    book.open(wechat, { outRefundNo: 'RW', amountFen: 3, request: {}, notifyUrl: 'http://localhost/r', reason: 'why' });
    expect(book.getWechat('RW')).toBe(book.get('wechat', 'ANY', 'RW'));
    expect(book.getWechat('RW')).toMatchObject({ notifyUrl: 'http://localhost/r', reason: 'why' });

    const copies = book.ofTrade('ALI_1');
    expect(copies).toEqual([expect.objectContaining({ outRefundNo: 'R1', amountFen: 1 })]);
    copies[0].amountFen = 99;
    (copies[0].request as { n: number }).n = 2;
    expect(book.get('alipay', 'ALI_1', 'R1')).toMatchObject({ amountFen: 1, request: { n: 1 } });
    expect(book.ofTrade('NONE')).toEqual([]);
  });
});
