import { createSign, type KeyObject, randomBytes } from 'node:crypto';
import type { Clock } from '../domain/time';
import { requestFunctionFor } from '../outboundHttp';
import { GatewayError } from './paymentGateway';
import type { WechatSignatureVerifier } from './wechatSignature';

const SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
const TIMEOUT_MS = 5_000;

export interface WechatPayApiOptions {
  mchid: string;
  merchantSerial: string;
  /** Parsed once: parsing the PEM on every signature (as wechatpay-node-v3 does) costs more than the signature. */
  merchantPrivateKey: KeyObject;
  /** https://api.mch.weixin.qq.com, or the local sandbox */
  gatewayUrl: string;
  /** Checks WeChat's response signatures. */
  verifier: WechatSignatureVerifier;
  /**
   * The WeChat Pay public key id (`PUB_KEY_ID_…`) sent as `Wechatpay-Serial`: WeChat then signs its answer
   * with that key. A merchant switching from platform certificates gets answers signed with the
   * certificate when a request names none (docs/references.md).
   */
  wechatpaySerial?: string;
  now: Clock;
}

/** An answer of WeChat Pay whose signature has been checked. */
export interface WechatAnswer {
  status: number;
  /** The parsed JSON body of a 2xx answer with a body. */
  data?: unknown;
  /** WeChat's error `code` and `message` of a non-2xx answer, when it has them. */
  code?: string;
  message?: string;
}

/**
 * WeChat Pay API v3 over HTTP, signed and verified with node:crypto: each request carries
 * `Authorization: WECHATPAY2-SHA256-RSA2048 …` over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`
 * (WeChat's 签名生成, docs/references.md), and each answer must carry WeChat Pay's signature, empty
 * ones too. wechatpay-node-v3 signed the same way, but loading it (and its certificate parsing, and
 * parsing the key again for every signature) made a payOrder cold start 2.93x a bare node start instead
 * of 2.34x (README, "Bundles and cold starts"); it stays the reference client the sandbox is tested
 * against (test/scripts/sandbox).
 */
export class WechatPayApi {
  constructor(private readonly options: WechatPayApiOptions) {}

  post(path: string, body: Record<string, unknown>): Promise<WechatAnswer> {
    return this.send('POST', path, JSON.stringify(body));
  }

  get(path: string): Promise<WechatAnswer> {
    return this.send('GET', path, '');
  }

  private authorization(method: string, path: string, body: string): string {
    const { mchid, merchantSerial, merchantPrivateKey, now } = this.options;
    const timestamp = String(Math.floor(now().getTime() / 1000));
    const nonce = randomBytes(16).toString('hex');
    const signature = createSign('RSA-SHA256').update(`${method}\n${path}\n${timestamp}\n${nonce}\n${body}\n`, 'utf8').sign(merchantPrivateKey, 'base64');
    return `${SCHEMA} mchid="${mchid}",nonce_str="${nonce}",timestamp="${timestamp}",serial_no="${merchantSerial}",signature="${signature}"`;
  }

  private async send(method: 'GET' | 'POST', path: string, body: string): Promise<WechatAnswer> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'paynow (node)',
      Authorization: this.authorization(method, path, body),
    };
    if (method === 'POST') headers['Content-Type'] = 'application/json';
    if (this.options.wechatpaySerial) headers['Wechatpay-Serial'] = this.options.wechatpaySerial;
    let response: HttpAnswer;
    try {
      response = await httpRequest(this.options.gatewayUrl + path, { method, headers, body: method === 'POST' ? body : undefined }, TIMEOUT_MS);
    } catch (error) {
      throw new GatewayError(`wechat gateway unreachable: ${(error as Error).name}`, { cause: error });
    }
    // Every answer is checked, empty ones too (WeChat signs a 204 over an empty body): "not found" and
    // "closed" lead to releasing points, so an unsigned 404 from a proxy must not mean either.
    const verdict = this.options.verifier.verify(
      {
        timestamp: response.header('wechatpay-timestamp'),
        nonce: response.header('wechatpay-nonce'),
        signature: response.header('wechatpay-signature'),
        serial: response.header('wechatpay-serial'),
        body: response.body,
      },
      this.options.now().getTime(),
    );
    if (verdict !== 'ok') throw new GatewayError(`wechat response signature: ${verdict}`);
    const { status } = response;
    if (status < 200 || status > 299) return { status, ...errorOf(response.body) };
    if (!response.body) {
      if (status === 200) throw new GatewayError('wechat answered 200 with no body');
      return { status };
    }
    try {
      return { status, data: JSON.parse(response.body) };
    } catch {
      throw new GatewayError('wechat response is not JSON');
    }
  }
}

function errorOf(body: string): { code?: string; message?: string } {
  try {
    const { code, message } = JSON.parse(body) as { code?: unknown; message?: unknown };
    return { code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message : undefined };
  } catch {
    return {};
  }
}

interface HttpAnswer {
  status: number;
  header(name: string): string;
  body: string;
}

/**
 * One HTTP exchange on node:https (already loaded by the AWS SDK; the first `fetch` of a process loads
 * Node's undici, about 75 ms of a cold start on Node 20), given up (TimeoutError) after `timeoutMs` in
 * all; a connection that closes early rejects. No `Accept-Encoding`: the body is read as sent.
 */
async function httpRequest(target: string, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs: number): Promise<HttpAnswer> {
  const url = new URL(target);
  const send = await requestFunctionFor(url);
  return new Promise((resolve, reject) => {
    const request = send(url, { method: init.method, headers: init.headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          header: (name) => String(response.headers[name] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    const timer = setTimeout(() => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    request.on('error', reject);
    request.on('close', () => {
      clearTimeout(timer);
      // Settled already when the answer ended; otherwise the connection went away mid-answer.
      reject(Object.assign(new Error('connection closed before the answer ended'), { name: 'ConnectionClosed' }));
    });
    request.end(init.body);
  });
}
