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
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    // Idempotent: a test that stops the database on purpose still has its afterAll close it.
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; without this, close waits for their idle timeout.
        server.closeAllConnections();
      })),
  };
}
