import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { LOCAL_DYNAMODB_ENDPOINT, LOCAL_TABLE_NAME } from './local/constants';

/** The table an operator's command works on: DYNAMODB_ENDPOINT and TABLE_NAME, the local stack's by default. */
export interface CommandTable {
  db: DynamoDBDocumentClient;
  table: string;
  endpoint: string;
}

/**
 * Runs an operator's command (`npm run reconcile`, `handled`, a migration) against the table and exits
 * with its code; 2, with `<name> failed: <message>`, when it throws (the table unreachable, say).
 */
export function runTableCommand(name: string, command: (on: CommandTable) => Promise<number>): void {
  const endpoint = process.env.DYNAMODB_ENDPOINT ?? LOCAL_DYNAMODB_ENDPOINT;
  const db = createDocumentClient(endpoint);
  command({ db, table: process.env.TABLE_NAME ?? LOCAL_TABLE_NAME, endpoint })
    .finally(() => db.destroy())
    .then(
      (code) => process.exit(code),
      (error: Error) => {
        console.error(`${name} failed: ${error.message}`);
        process.exit(2);
      },
    );
}
