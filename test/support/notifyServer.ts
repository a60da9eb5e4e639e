import http from 'node:http';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App, NotificationRoute } from '../../lib/app';
import { notificationHandler } from '../../lib/http/notificationHandler';
import { httpEvent, lambdaContext } from '../../scripts/local/httpEvents';

const ROUTES: Record<string, NotificationRoute> = { '/notify/wechat': 'wechat', '/notify/alipay': 'alipay', '/notify/wechat/refund': 'wechatRefund' };

export interface NotifyServer {
  /** Each notification received: its path, and the status answered. */
  received: { path: string; status: number; body: string }[];
  close(): Promise<void>;
}

/**
 * The notification endpoints of a test stack's app over real HTTP, on `port` (the port its
 * NOTIFY_BASE_URL names), so the sandbox's own notifications reach the same handlers the functions use.
 */
export async function startNotifyServer(app: App, port: number): Promise<NotifyServer> {
  const handlers = Object.fromEntries(Object.entries(ROUTES).map(([path, route]) => [path, notificationHandler(app, route)]));
  const received: NotifyServer['received'] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const path = (request.url ?? '').split('?')[0];
      const handler = handlers[path];
      if (!handler) {
        response.writeHead(404).end();
        return;
      }
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
      const answer = (await handler(
        httpEvent({ path, headers, body: Buffer.concat(chunks).toString('utf8') }),
        lambdaContext,
      )) as APIGatewayProxyStructuredResultV2;
      received.push({ path, status: answer.statusCode ?? 200, body: String(answer.body ?? '') });
      response.writeHead(answer.statusCode ?? 200, answer.headers as http.OutgoingHttpHeaders).end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
