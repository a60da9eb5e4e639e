import { TradeAlreadyPaid, TradeClosed } from '../../../lib/gateways/paymentGateway';

describe("a gateway's answers that are not failures", () => {
  it('name the trade in their message, as the logs show them', () => {
    expect(new TradeAlreadyPaid('88T1')).toMatchObject({ name: 'TradeAlreadyPaid', message: 'trade 88T1 is already paid', outTradeNo: '88T1' });
    expect(new TradeClosed('88T1')).toMatchObject({ name: 'TradeClosed', message: 'trade 88T1 is closed', outTradeNo: '88T1' });
  });
});
