import { AttemptInFlight, PayError, RefundRefused, ShopRefusal } from '../../../lib/domain/errors';

/** What a person reads: the message of each refusal, with its detail when there is one. */
describe('error messages', () => {
  it('name the code’s message, and the detail in brackets after it', () => {
    expect(new PayError('PRICE_MISMATCH', '应付88.00元').message).toMatch(/\(应付88\.00元\)$/);
    expect(new RefundRefused('REFUND_FAILED').message).toBe('支付渠道拒绝了退款');
    expect(new RefundRefused('REFUND_FAILED', 'ACQ.TRADE_HAS_FINISHED').message).toBe('支付渠道拒绝了退款(ACQ.TRADE_HAS_FINISHED)');
    expect(new ShopRefusal('ORDER_BUSY').message).toBe('订单正在处理中,请稍后再试');
    expect(new ShopRefusal('INVALID_COMMAND', 'order_id').message).toBe('命令格式错误(order_id)');
  });

  it('name the attempt still being created at its gateway', () => {
    expect(new AttemptInFlight('501T1').message).toBe('attempt 501T1 is still being created at its gateway');
  });
});
