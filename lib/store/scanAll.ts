import { type DynamoDBDocumentClient, ScanCommand, type ScanCommandInput } from '@aws-sdk/lib-dynamodb';
import type { Item } from './items';

/**
 * Every item of the table, page by page, strongly consistent (an operator's tool: reconcile, a
 * migration, the local fixtures; never a request's path). With `filter`, only the items it matches
 * (read all the same); with a projection, only the attributes it names.
 */
export async function scanAll(
  db: DynamoDBDocumentClient,
  table: string,
  filter: Pick<ScanCommandInput, 'FilterExpression' | 'ProjectionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'> = {},
): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true, ...filter }));
    items.push(...((page.Items ?? []) as Item[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
