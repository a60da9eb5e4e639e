import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { requestFunctionFor } from '../../lib/outboundHttp';

const ROOT = join(__dirname, '..', '..');

it("sends an https: URL with node:https's request", async () => {
  expect(await requestFunctionFor(new URL('https://api.mch.weixin.qq.com/v3/pay/transactions/app'))).toBe(https.request);
});

it("sends an http: URL (the local sandbox) with node:http's request, loaded once", async () => {
  const first = requestFunctionFor(new URL('http://127.0.0.1:4000/v3/pay/transactions/app'));
  expect(await first).toBe(http.request);
  expect(requestFunctionFor(new URL('http://127.0.0.1:4001/shop/events'))).toBe(first);
});

// On Node 24 a static import of node:http loads undici (lib/outboundHttp.ts): the deployed code reaches
// node:http only through requestFunctionFor.
it('leaves node:http out of every static import of the deployed code', () => {
  const sources = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
    );
  const importing = [...sources('lib'), ...sources('functions')].filter((file) =>
    /^import [^;]* from ['"](node:)?http['"]/m.test(readFileSync(join(ROOT, file), 'utf8')),
  );
  expect(importing).toEqual([]);
});
