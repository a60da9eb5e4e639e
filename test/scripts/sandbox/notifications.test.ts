import { createDecipheriv, createVerify, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipaySdk } from 'alipay-sdk';
import WxPay from 'wechatpay-node-v3';
import { alipayGatewayUrl, generateSandboxCredentials, type SandboxCredentials } from '../../../scripts/sandbox/credentials';
import { type SandboxGateway, startSandboxGateway } from '../../../scripts/sandbox/gateway';
import {
  buildAlipayPaymentNotification,
  buildWechatPaymentNotification,
  sendNotificationForPaidTrade,
  wechatTransactionResource,
} from '../../../scripts/sandbox/notifications';
import { alipaySignContent } from '../../../scripts/sandbox/signing';
import { beijingDateTime } from '../../support/sandboxBeijingTime';
import { createWechatSandboxHttp } from '../../support/sandboxWechatHttp';

let creds: SandboxCredentials;
let gateway: SandboxGateway;
let alipay: AlipaySdk;
let wxpay: WxPay;
let seq = 0;
const nextOutTradeNo = (prefix: string) => `${prefix}_${Date.now()}_${(seq += 1)}`;

/** A merchant endpoint that records what it is sent. */
interface Received {
  method?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
let merchant: http.Server;
let merchantUrl: string;
let received: Received[] = [];

beforeAll(async () => {
  creds = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  gateway = await startSandboxGateway({ credentials: creds });
  alipay = new AlipaySdk({
    appId: creds.alipay.app_id,
    privateKey: creds.alipay.app_private_key_pem,
    alipayPublicKey: creds.alipay.alipay_public_key_pem,
    gateway: alipayGatewayUrl(gateway.url),
  });
  wxpay = new WxPay({
    appid: creds.wechat.appid,
    mchid: creds.wechat.mchid,
    publicKey: Buffer.from(creds.wechat.merchant_cert_pem),
    privateKey: Buffer.from(creds.wechat.merchant_private_key_pem),
  });
  wxpay.createHttp(createWechatSandboxHttp(gateway.url));
  merchant = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url?.startsWith('/alipay')) {
        res.end('success');
      } else {
        res.writeHead(204).end();
      }
    });
  });
  await new Promise<void>((resolve) => merchant.listen(0, '127.0.0.1', resolve));
  merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await gateway.close();
  merchant.closeAllConnections();
  await new Promise((resolve) => merchant.close(resolve));
});
beforeEach(() => {
  received = [];
});

// ---- what the app must do with a WeChat callback, with node:crypto only ----

function wechatSignatureValid(headers: Record<string, string | string[] | undefined>, body: string): boolean {
  const h = (name: string) => String(headers[name] ?? headers[name.toLowerCase()] ?? '');
  const message = `${h('Wechatpay-Timestamp')}\n${h('Wechatpay-Nonce')}\n${body}\n`;
  return createVerify('RSA-SHA256').update(message).verify(creds.wechat.platform_public_key_pem, h('Wechatpay-Signature'), 'base64');
}

function decryptWechatResource(resource: { ciphertext: string; associated_data: string; nonce: string }): string {
  const data = Buffer.from(resource.ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(creds.wechat.apiv3_key), Buffer.from(resource.nonce));
  decipher.setAuthTag(data.subarray(data.length - 16));
  decipher.setAAD(Buffer.from(resource.associated_data));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
}

async function paidWechatTrade(total = 4321): Promise<string> {
  const outTradeNo = nextOutTradeNo('WXN');
  const result = await wxpay.transactions_app({
    description: '测试',
    out_trade_no: outTradeNo,
    notify_url: `${merchantUrl}/wechat`,
    amount: { total, currency: 'CNY' },
  });
  expect(result.status).toBe(200);
  gateway.pay(outTradeNo);
  return outTradeNo;
}

describe('buildWechatPaymentNotification', () => {
  it('builds a TRANSACTION.SUCCESS callback signed with the platform key, whose resource decrypts to the transaction', async () => {
    const outTradeNo = await paidWechatTrade();
    const transaction = wechatTransactionResource(gateway.trade(outTradeNo)!, creds.wechat);
    const { headers, body } = buildWechatPaymentNotification(creds.wechat, transaction);

    expect(headers['Wechatpay-Serial']).toBe(creds.wechat.platform_serial);
    expect(headers['Wechatpay-Signature-Type']).toBe('WECHATPAY2-SHA256-RSA2048');
    expect(Math.abs(Number(headers['Wechatpay-Timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(headers['Wechatpay-Nonce']).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(wechatSignatureValid(headers, body)).toBe(true);

    const envelope = JSON.parse(body);
    expect(Object.keys(envelope)).toEqual(['id', 'create_time', 'resource_type', 'event_type', 'summary', 'resource']);
    expect(envelope).toMatchObject({
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      create_time: expect.stringMatching(/\+08:00$/),
      resource: {
        original_type: 'transaction',
        algorithm: 'AEAD_AES_256_GCM',
        associated_data: 'transaction',
        nonce: expect.stringMatching(/^[A-Za-z0-9]{12}$/),
      },
    });
    const decrypted = JSON.parse(decryptWechatResource(envelope.resource));
    expect(decrypted).toEqual(transaction);
    expect(decrypted).toMatchObject({ out_trade_no: outTradeNo, trade_state: 'SUCCESS', amount: { total: 4321, payer_total: 4321 } });
    // The callback carries what the query says.
    expect(decrypted).toEqual((await wxpay.query({ out_trade_no: outTradeNo })).data);
  });

  it('fails verification when the body is tampered, and decryption when the ciphertext is', async () => {
    const outTradeNo = await paidWechatTrade(100);
    const { headers, body } = buildWechatPaymentNotification(creds.wechat, wechatTransactionResource(gateway.trade(outTradeNo)!, creds.wechat));
    expect(wechatSignatureValid(headers, body.replace('TRANSACTION.SUCCESS', 'TRANSACTION.SUCCESs'))).toBe(false);
    expect(wechatSignatureValid({ ...headers, 'Wechatpay-Timestamp': String(Number(headers['Wechatpay-Timestamp']) + 1) }, body)).toBe(false);

    const resource = JSON.parse(body).resource;
    const bytes = Buffer.from(resource.ciphertext, 'base64');
    bytes[3] ^= 0x01;
    const tampered = { ...resource, ciphertext: bytes.toString('base64') };
    expect(() => decryptWechatResource(tampered)).toThrow(/authenticate/);
    expect(() => decryptWechatResource({ ...resource, associated_data: 'certificate' })).toThrow(/authenticate/);
    // wechatpay-node-v3's decipher_gcm never calls final(): it returns garbage instead of failing.
    expect(() => wxpay.decipher_gcm(tampered.ciphertext, tampered.associated_data, tampered.nonce, creds.wechat.apiv3_key)).not.toThrow();
  });

  it('bends for negative tests: another signing key, another serial, an old timestamp', () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = buildWechatPaymentNotification(creds.wechat, { out_trade_no: 'X' }, { signWithKeyPem: other });
    expect(wechatSignatureValid(forged.headers, forged.body)).toBe(false);
    const stale = buildWechatPaymentNotification(creds.wechat, { out_trade_no: 'X' }, { timestamp: 1_700_000_000, serial: 'PUB_KEY_ID_0000' });
    expect(stale.headers['Wechatpay-Timestamp']).toBe('1700000000');
    expect(stale.headers['Wechatpay-Serial']).toBe('PUB_KEY_ID_0000');
    expect(wechatSignatureValid(stale.headers, stale.body)).toBe(true);
  });
});

describe('buildAlipayPaymentNotification', () => {
  const fields = () => ({
    out_trade_no: 'ALIN_000001',
    trade_no: '2026112822001400001234567890',
    total_amount: '12.34',
    receipt_amount: '12.34',
    buyer_id: '2088102177846880',
    trade_status: 'TRADE_SUCCESS',
    gmt_payment: beijingDateTime(),
    subject: '100%好评 商品+1',
  });

  it('signs the fields so that alipay-sdk checkNotifySignV2 accepts the decoded form body', () => {
    const n = buildAlipayPaymentNotification(creds.alipay, fields());
    expect(n.contentType).toBe('application/x-www-form-urlencoded');
    const decoded = Object.fromEntries(new URLSearchParams(n.body));
    expect(decoded).toEqual(n.fields);
    expect(decoded).toMatchObject({
      notify_type: 'trade_status_sync',
      app_id: creds.alipay.app_id,
      seller_id: creds.alipay.seller_id,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
      notify_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/),
      subject: '100%好评 商品+1',
    });
    expect(decoded.notify_id).toBeTruthy();
    expect(alipay.checkNotifySignV2(decoded)).toBe(true);
  });

  it('signs without sign and sign_type, as Alipay does for async notifications', () => {
    const n = buildAlipayPaymentNotification(creds.alipay, fields());
    const withoutSignType = alipaySignContent(n.fields, ['sign', 'sign_type']);
    expect(withoutSignType).not.toContain('sign_type=');
    expect(createVerify('RSA-SHA256').update(withoutSignType).verify(creds.alipay.alipay_public_key_pem, n.fields.sign, 'base64')).toBe(true);
    const withSignType = alipaySignContent(n.fields, ['sign']);
    expect(createVerify('RSA-SHA256').update(withSignType).verify(creds.alipay.alipay_public_key_pem, n.fields.sign, 'base64')).toBe(false);
  });

  it('fails verification when a field is tampered with or the sign is made with another key', () => {
    const n = buildAlipayPaymentNotification(creds.alipay, fields());
    expect(alipay.checkNotifySignV2({ ...n.fields, total_amount: '0.01' })).toBe(false);
    expect(alipay.checkNotifySignV2({ ...n.fields, trade_status: 'TRADE_FINISHED' })).toBe(false);
    const { sign: _sign, ...unsigned } = n.fields;
    expect(alipay.checkNotifySignV2(unsigned)).toBe(false);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const forged = buildAlipayPaymentNotification({ ...creds.alipay, alipay_private_key_pem: other }, fields());
    expect(alipay.checkNotifySignV2(forged.fields)).toBe(false);
  });

  it('trips alipay-sdk checkNotifySign (v1) on a % in a value; checkNotifySignV2 is the one to use', () => {
    const n = buildAlipayPaymentNotification(creds.alipay, fields());
    expect(() => alipay.checkNotifySign(n.fields)).toThrow(URIError);
  });
});

describe('sendNotificationForPaidTrade and POST /sandbox/pay/{no} {"notify":true}', () => {
  it('delivers the WeChat callback to the notify_url of the prepay, verifiable by the merchant', async () => {
    const outTradeNo = await paidWechatTrade(999);
    const delivery = await sendNotificationForPaidTrade(gateway, outTradeNo);
    expect(delivery).toEqual({ url: `${merchantUrl}/wechat`, status: 204, body: '' });
    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['wechatpay-serial']).toBe(creds.wechat.platform_serial);
    expect(wechatSignatureValid(req.headers, req.body)).toBe(true);
    const tx = JSON.parse(decryptWechatResource(JSON.parse(req.body).resource));
    expect(tx).toMatchObject({ out_trade_no: outTradeNo, trade_state: 'SUCCESS', transaction_id: gateway.trade(outTradeNo)?.transactionId });
  });

  it('delivers the Alipay notification to the notify_url of the order string, verifiable with checkNotifySignV2', async () => {
    const outTradeNo = nextOutTradeNo('ALIN');
    gateway.registerAlipayOrder(
      alipay.sdkExecute('alipay.trade.app.pay', {
        notifyUrl: `${merchantUrl}/alipay`,
        bizContent: { outTradeNo, totalAmount: '66.60', subject: '测试' },
      }),
    );
    const res = await fetch(`${gateway.url}/sandbox/pay/${outTradeNo}`, { method: 'POST', body: JSON.stringify({ notify: true }) });
    expect(res.status).toBe(200);
    const paid = (await res.json()) as { transactionId: string; notification: { status: number; body: string; url: string } };
    expect(paid.notification).toEqual({ url: `${merchantUrl}/alipay`, status: 200, body: 'success' });

    expect(received).toHaveLength(1);
    expect(received[0].headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    const form = Object.fromEntries(new URLSearchParams(received[0].body));
    expect(alipay.checkNotifySignV2(form)).toBe(true);
    expect(form).toMatchObject({
      out_trade_no: outTradeNo,
      trade_no: paid.transactionId,
      total_amount: '66.60',
      receipt_amount: '66.60',
      trade_status: 'TRADE_SUCCESS',
      seller_id: creds.alipay.seller_id,
      app_id: creds.alipay.app_id,
      buyer_id: gateway.trade(outTradeNo)?.payer?.buyerId,
    });
    expect(JSON.parse(form.fund_bill_list)).toEqual([{ amount: '66.60', fundChannel: 'ALIPAYACCOUNT' }]);
  });

  it('refuses to notify for a trade that is not paid', async () => {
    const outTradeNo = nextOutTradeNo('WXN');
    await wxpay.transactions_app({ description: '测试', out_trade_no: outTradeNo, notify_url: `${merchantUrl}/wechat`, amount: { total: 1 } });
    await expect(sendNotificationForPaidTrade(gateway, outTradeNo)).rejects.toThrow(/not PAID/);
    await expect(sendNotificationForPaidTrade(gateway, 'NEVER_CREATED')).rejects.toThrow(/unknown trade/);
    expect(received).toHaveLength(0);
  });
});
