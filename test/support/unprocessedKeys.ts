import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Makes `client`'s BatchGetItem of `table` answer as a throttled DynamoDB does, which dynalite never
 * does: the first `answeredKeys` keys read, the others returned as UnprocessedKeys (with none answered,
 * a reply naming no table in Responses). Low in the client's stack, so that other middleware of the
 * client (a recorder, the capacity meter) sees the request as sent and the reply as DynamoDB's.
 */
export function leaveKeysUnprocessed(client: DynamoDBDocumentClient, table: string, answeredKeys: number): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'BatchGetItemCommand') return next(args);
      const request = (args.input as { RequestItems: Record<string, { Keys: object[] }> }).RequestItems[table];
      const unprocessed = { [table]: { ...request, Keys: request.Keys.slice(answeredKeys) } };
      if (answeredKeys === 0) return { output: { Responses: {}, UnprocessedKeys: unprocessed, $metadata: {} }, response: {} };
      const answered = await next({ ...args, input: { RequestItems: { [table]: { ...request, Keys: request.Keys.slice(0, answeredKeys) } } } });
      (answered.output as { UnprocessedKeys: object }).UnprocessedKeys = unprocessed;
      return answered;
    },
    { step: 'initialize', priority: 'low', name: 'leaveKeysUnprocessed' },
  );
}
