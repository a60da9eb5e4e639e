import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { WriteConflict } from './payStore';

/**
 * The document client every store shares. `endpoint` points at the local database; on AWS it is
 * unset and the SDK uses the Lambda's region and role.
 */
export function createDocumentClient(endpoint?: string): DynamoDBDocumentClient {
  const client = new DynamoDBClient(
    endpoint ? { endpoint, region: process.env.AWS_REGION ?? 'cn-north-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {},
  );
  retryTransactionConflicts(client);
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * A single-item write (PutItem, UpdateItem, DeleteItem) on an item that a transaction is writing is
 * rejected with TransactionConflictException (AWS Developer Guide, "Transaction conflict handling in
 * DynamoDB"): nothing was written, so sending it again is safe, but the SDK does not retry it by
 * itself (it is neither a throttling nor a transient error to it). Marked retryable here, between
 * the SDK's retries and its deserializer, it is sent again with the SDK's jittered backoff, within the
 * client's tries (`maxAttempts`: 4 for DynamoDB in this SDK), as a transient error is; one user's
 * overlapping requests then wait for each other instead of one of them failing with an internal
 * error. One still in conflict after the last try has lost a race to that transaction: it is a
 * WriteConflict, decided again from fresh reads by `retryLostRaces` (or answered "busy") as a cancelled
 * transaction is. Transactions are not concerned: theirs is TransactionCanceledException.
 */
function retryTransactionConflicts(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (error instanceof Error && error.name === 'TransactionConflictException') Object.assign(error, { $retryable: {} });
        throw error;
      }
    },
    { step: 'deserialize', priority: 'high', name: 'retryTransactionConflicts' },
  );
  // Outside the retries: what is left once they are spent.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (error instanceof Error && error.name === 'TransactionConflictException') throw new WriteConflict('state', { cause: error });
        throw error;
      }
    },
    { step: 'initialize', priority: 'high', name: 'transactionConflictLostRace' },
  );
}
