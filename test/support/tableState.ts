import { GetCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lib/store/dynamoClient';
import { ENTITY, keys, LEDGER_PREFIX, userPartition } from '../../lib/store/keys';
import { TABLE, type TestStack } from './stack';

type Item = Record<string, unknown>;

/** Reads the table as the tests need to see it: raw items, by the store's own keys. */
export function tableState(stack: TestStack) {
  const db = createDocumentClient(stack.dynamo.endpoint);
  const get = async (key: { pk: string; sk: string }) =>
    (await db.send(new GetCommand({ TableName: TABLE, Key: key, ConsistentRead: true }))).Item as Item | undefined;
  return {
    /** Every item, sorted, for "nothing changed" assertions. */
    async snapshot(): Promise<Item[]> {
      const items: Item[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await db.send(new ScanCommand({ TableName: TABLE, ExclusiveStartKey: start }));
        items.push(...((page.Items ?? []) as Item[]));
        start = page.LastEvaluatedKey;
      } while (start);
      return items.sort((a, b) => `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`));
    },
    item: get,
    account: (userId: number) => get(keys.account(userId)),
    order: (orderId: number) => get(keys.order(orderId)),
    attempt: (outTradeNo: string) => get(keys.attempt(outTradeNo)),
    async ledger(userId: number): Promise<Item[]> {
      const page = await db.send(
        new QueryCommand({
          TableName: TABLE,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ledger)',
          ExpressionAttributeValues: { ':pk': userPartition(userId), ':ledger': LEDGER_PREFIX },
          ConsistentRead: true,
        }),
      );
      return (page.Items ?? []) as Item[];
    },
    async attemptsOf(orderId: number): Promise<Item[]> {
      return (await this.snapshot()).filter((i) => i.entity === ENTITY.attempt && i.order_id === orderId);
    },
    /** Points earned elsewhere in the shop, as its points service would credit them. */
    async credit(userId: number, points: number): Promise<void> {
      await db.send(
        new UpdateCommand({
          TableName: TABLE,
          Key: keys.account(userId),
          UpdateExpression: 'ADD integral_available :p, integral_credited :p',
          ExpressionAttributeValues: { ':p': points },
        }),
      );
    },
    /** Sets an order's status by hand, nothing else (as the shop's own systems might): an open attempt on it stays. */
    async setOrderStatus(orderId: number, status: string): Promise<void> {
      await db.send(
        new UpdateCommand({
          TableName: TABLE,
          Key: keys.order(orderId),
          UpdateExpression: 'SET #status = :status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status },
        }),
      );
    },
    /** Puts an attempt at this place of the index by hand (a partition of before the due index, or back after a test took it out). */
    async placeInIndex(outTradeNo: string, place: { gsi1pk: string; gsi1sk: string }): Promise<void> {
      await db.send(
        new UpdateCommand({
          TableName: TABLE,
          Key: keys.attempt(outTradeNo),
          UpdateExpression: 'SET gsi1pk = :pk, gsi1sk = :sk',
          ExpressionAttributeValues: { ':pk': place.gsi1pk, ':sk': place.gsi1sk },
        }),
      );
    },
    close: () => db.destroy(),
  };
}
