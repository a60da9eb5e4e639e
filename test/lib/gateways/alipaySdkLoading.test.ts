/**
 * alipay-sdk (1 MB of code) is read on the first call that goes to Alipay, never for a pay: the order
 * string is signed with node:crypto (lib/gateways/alipaySignature.ts).
 */
import { GatewayError } from '../../../lib/gateways/paymentGateway';
import { generateSandboxCredentials } from '../../../scripts/sandbox/credentials';

const mockSdkLoaded = jest.fn();
jest.mock('alipay-sdk', () => {
  mockSdkLoaded();
  return jest.requireActual('alipay-sdk');
});

it('signs a pay without loading alipay-sdk, and loads it once for the calls that go to Alipay', async () => {
  // Imported here, after the mock is set up: a static import of the SDK would count now.
  const { AlipayGateway } = await import('../../../lib/gateways/alipay');
  const creds = (await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' })).alipay;
  const now = new Date('2026-11-28T12:00:00.000Z');
  const gateway = new AlipayGateway({
    appId: creds.app_id,
    appPrivateKeyPem: creds.app_private_key_pem,
    alipayPublicKeyPem: creds.alipay_public_key_pem,
    // Nothing listens there: each call fails at once, after the SDK is loaded.
    gatewayUrl: 'http://127.0.0.1:1/gateway.do',
    notifyUrl: 'https://pay.example.com/notify/alipay',
    now: () => now,
  });
  await gateway.createPayParam({ outTradeNo: '502T1', amountFen: 8800, subject: '保温杯', expiresAt: new Date(now.getTime() + 30 * 60_000) });
  expect(mockSdkLoaded).not.toHaveBeenCalled();

  await expect(gateway.queryTrade('502T1')).rejects.toBeInstanceOf(GatewayError);
  await expect(gateway.closeTrade('502T1')).rejects.toBeInstanceOf(GatewayError);
  expect(mockSdkLoaded).toHaveBeenCalledTimes(1);
});
