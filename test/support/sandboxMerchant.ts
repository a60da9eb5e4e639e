/**
 * A merchant endpoint for tests of the sandbox's own notifications: it records every request and answers as
 * a merchant that took it (paths under /alipay: the text `success`; anything else: 204).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedNotification {
  method?: string;
  /** The path and query the gateway posted to. */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RecordingMerchant {
  /** `http://127.0.0.1:<port>`: notify_urls are this plus a path. */
  url: string;
  /** Everything received so far, in order. */
  received: ReceivedNotification[];
  /** What was received on `path` (the path only, without the query). */
  receivedOn(path: string): ReceivedNotification[];
  close(): Promise<void>;
}

/**
 * @example
 * const merchant = await startRecordingMerchant();
 * // ... refund with notify_url `${merchant.url}/wechat/refund`, then await gateway.refundsSettled()
 * expect(merchant.receivedOn('/wechat/refund')).toHaveLength(1);
 */
export async function startRecordingMerchant(): Promise<RecordingMerchant> {
  const received: ReceivedNotification[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ method: req.method, path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/alipay')) res.end('success');
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    receivedOn: (path) => received.filter((r) => r.path.split('?')[0] === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
