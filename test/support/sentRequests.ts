import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lib/store/dynamoClient';

/** A request as the client sent it: the operation (`GetItem`, `Scan`, ...) and its input. */
export interface SentRequest {
  operation: string;
  input: Record<string, unknown>;
}

/**
 * A document client of the local database that records every request it sends, for what dynalite
 * cannot show: it reads consistently whatever is asked, so only the request says what DynamoDB would do.
 */
export function recordingClient(endpoint: string): { client: DynamoDBDocumentClient; sent: SentRequest[] } {
  const client = createDocumentClient(endpoint);
  const sent: SentRequest[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push({ operation: String(context.commandName).replace(/Command$/, ''), input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'initialize', name: 'recordRequests' },
  );
  return { client, sent };
}
