import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { sandboxStageSecret } from '../../scripts/local/environment';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';
import { captureOutput } from '../support/logs';
import { startTestStack, type TestStack } from '../support/stack';

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

let stack: TestStack;
let badSecret: string;
beforeAll(async () => {
  stack = await startTestStack();
  const document = sandboxStageSecret(stack.credentials);
  badSecret = join(await mkdtemp(join(tmpdir(), 'paynow-bad-secret-')), 'secret.json');
  await writeFile(badSecret, JSON.stringify({ ...document, wechat: { ...document.wechat, apiv3_key: 'leaked-but-wrong-length' } }));
});
afterAll(async () => {
  try {
    await stack.close();
  } finally {
    if (badSecret) await rm(dirname(badSecret), { recursive: true, force: true });
  }
});

/** A freshly started function (its own module instances), with `SECRET_ID` as given. */
function coldStart(name: 'payOrder' | 'notifyWechat', secretId: string): Handler {
  Object.assign(process.env, stack.env, { SECRET_ID: secretId });
  let handler: Handler | undefined;
  jest.isolateModules(() => {
    handler = (require(`../../functions/${name}/handler`) as { handler: Handler }).handler;
  });
  return handler as Handler;
}

describe('a function whose stage secret is missing or malformed', () => {
  it('answers the app INTERNAL_ERROR, logging the field and never the value', async () => {
    const handler = coldStart('payOrder', `file:${badSecret}`);
    const { result, lines, text } = await captureOutput(() =>
      handler(httpEvent({ path: '/order/pay', headers: { token: 'any', 'content-type': 'application/json' }, body: '{}' }), lambdaContext),
    );
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body as string)).toMatchObject({ status: 0, code: 'INTERNAL_ERROR' });
    const failure = lines.find((line) => line.message === 'request failed') as { error: { name: string; message: string } };
    expect(failure.error).toMatchObject({ name: 'SecretError', message: expect.stringContaining('wechat.apiv3_key: must be 32 characters') });
    expect(text).not.toContain('leaked-but-wrong-length');
  });

  it('answers WeChat 500 FAIL, so the notification comes again once the secret is fixed', async () => {
    const handler = coldStart('notifyWechat', `file:${join(tmpdir(), 'no-such-dir', 'secret.json')}`);
    const { result, lines } = await captureOutput(() => handler(httpEvent({ path: '/notify/wechat', body: '{}' }), lambdaContext));
    expect(result).toMatchObject({ statusCode: 500, body: JSON.stringify({ code: 'FAIL', message: '系统繁忙' }) });
    expect(lines.find((line) => line.message === 'notification failed')).toMatchObject({
      error: { name: 'SecretError', message: expect.stringContaining('cannot be read: ENOENT') },
    });
  });
});
