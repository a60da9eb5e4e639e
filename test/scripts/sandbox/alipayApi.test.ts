import { AlipaySdk } from 'alipay-sdk';
import { AlipayApi } from '../../../scripts/sandbox/alipayApi';
import { generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { TradeBook } from '../../../scripts/sandbox/tradeBook';

let creds: SandboxCredentials;
let sdk: AlipaySdk;

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  sdk = new AlipaySdk({ appId: creds.alipay.app_id, privateKey: creds.alipay.app_private_key_pem, alipayPublicKey: creds.alipay.alipay_public_key_pem });
});

const orderString = (outTradeNo: string, totalAmount: string) =>
  sdk.sdkExecute('alipay.trade.app.pay', { bizContent: { outTradeNo, totalAmount, subject: '测试', productCode: 'QUICK_MSECURITY_PAY' } });

describe('AlipayApi.registerAppOrder', () => {
  it('takes total_amount from 0.01 to 100000000.00 yuan, as its refusal says', () => {
    const alipay = new AlipayApi(creds.alipay, new TradeBook(), 600);
    expect(alipay.registerAppOrder(orderString('ALI_MIN', '0.01')).amountFen).toBe(1);
    expect(alipay.registerAppOrder(orderString('ALI_MAX', '100000000.00')).amountFen).toBe(100_000_000_00);
    expect(() => alipay.registerAppOrder(orderString('ALI_OVER', '100000000.01'))).toThrow(/0\.01-100000000\.00/);
    // Alipay's format is stricter than the app's yuanToFen, which trims spaces.
    expect(() => alipay.registerAppOrder(orderString('ALI_SPACE', ' 1.00'))).toThrow(expect.objectContaining({ code: 'INVALID_ORDER_STRING' }));
  });
});
