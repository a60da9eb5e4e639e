/**
 * An in-memory DynamoDB (dynalite) for the local stack and tests, with transactions.
 *
 * @example
 * const dynamo = await startLocalDynamo();
 * const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1',
 *   credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
 * // ...
 * await dynamo.close();
 */
import type { AddressInfo } from 'node:net';
import { createDynaliteWithTransactions } from './dynaliteTransactions';

export interface LocalDynamo {
  /** e.g. `http://127.0.0.1:41234` */
  endpoint: string;
  port: number;
  /** Stops listening, drops open connections and closes the in-memory database. */
  close(): Promise<void>;
}

/** Starts dynalite in this process on `host` (default 127.0.0.1) and `port` (default: a free one). */
export async function startLocalDynamo(opts: { port?: number; host?: string } = {}): Promise<LocalDynamo> {
  const host = opts.host ?? '127.0.0.1';
  // Tables are ACTIVE at once: with dynalite's default delays the first write after CreateTable fails.
  const server = createDynaliteWithTransactions({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  // Requests being answered: dynalite closes its database when the server closes, and a request still
  // at work then throws from a callback (`Database is closed`), which takes the whole process down.
  let answering = 0;
  let closing: Promise<void> | undefined;
  // SDK clients keep connections alive; without dropping them, close waits for their idle timeout.
  const dropConnectionsOnceAnswered = () => {
    if (closing && answering === 0) server.closeAllConnections();
  };
  server.on('request', (_request, response) => {
    answering++;
    response.once('close', () => {
      answering--;
      dropConnectionsOnceAnswered();
    });
  });
  return {
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    // Idempotent: a test that stops the database on purpose still has its afterAll close it.
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      dropConnectionsOnceAnswered();
      return closing;
    },
  };
}
