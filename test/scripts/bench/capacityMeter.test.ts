import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, TransactGetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { itemSize, meterCapacity } from '../../../scripts/bench/capacityMeter';
import { LOCAL_TABLE_NAME as TABLE } from '../../../scripts/local/constants';
import { type LocalDynamo, startLocalDynamo } from '../../../scripts/local/dynalite';
import { createTables } from '../../../scripts/local/tables';
import { leaveKeysUnprocessed } from '../../support/unprocessedKeys';

/** The meter behind `npm run bench -- cost` bills each request by DynamoDB's rules (docs/capacity.md). */
let dynamo: LocalDynamo;
const clients: ReturnType<typeof createDocumentClient>[] = [];
let meter: ReturnType<typeof meterCapacity>;
let db: ReturnType<typeof createDocumentClient>;

beforeAll(async () => {
  dynamo = await startLocalDynamo();
  await createTables(dynamo.endpoint, TABLE);
  db = createDocumentClient(dynamo.endpoint);
  clients.push(db, createDocumentClient(dynamo.endpoint));
  meter = meterCapacity(db, clients[1], TABLE);
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await dynamo.close();
});

const padding = (bytes: number) => 'x'.repeat(bytes);
const bill = (label: string) => meter.byLabel.get(label);

it('sizes items as DynamoDB does: names and values, numbers by their digits, maps and lists with their overhead', () => {
  expect(itemSize({ pk: 'ab', n: 12345 })).toBe(2 + 2 + 1 + 4); // 'pk'+'ab', 'n' + 3 digit pairs + 1
  expect(itemSize({ m: { a: 'b' } })).toBe(1 + 3 + (1 + 1 + 1)); // map overhead 3, one element: name, value, 1
  expect(itemSize({ l: ['ab', true] })).toBe(1 + 3 + (2 + 1) + (1 + 1));
  expect(itemSize({ s: '积分' })).toBe(1 + 6); // UTF-8 bytes
});

it('a put of a new 1.5 KB item: 2 write units; a strongly consistent read of it: 1 read unit, half eventually consistent', async () => {
  await meter.measure('put', () => db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'm1', sk: 's', data: padding(1500) } })));
  await meter.measure('get', () => db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'm1', sk: 's' }, ConsistentRead: true })));
  await meter.measure('get eventually', () => db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'm1', sk: 's' } })));
  await meter.measure('get missing', () => db.send(new GetCommand({ TableName: TABLE, Key: { pk: 'none', sk: 's' }, ConsistentRead: true })));
  expect(bill('put')).toEqual({ writeUnits: 2, indexWriteUnits: 0, readUnits: 0, requests: 1 });
  expect(bill('get')).toMatchObject({ readUnits: 1, writeUnits: 0 });
  expect(bill('get eventually')).toMatchObject({ readUnits: 0.5 });
  expect(bill('get missing')).toMatchObject({ readUnits: 1 });
});

it('an update is billed on the larger of the item before and after; a failed condition still costs', async () => {
  await db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'm2', sk: 's', data: padding(2500) } }));
  await meter.measure('shrink', () =>
    db.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { pk: 'm2', sk: 's' },
        UpdateExpression: 'SET #d = :d',
        ExpressionAttributeNames: { '#d': 'data' },
        ExpressionAttributeValues: { ':d': 'x' },
      }),
    ),
  );
  expect(bill('shrink')).toMatchObject({ writeUnits: 3 });
  await meter
    .measure('refused', () => db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'm2', sk: 's' }, ConditionExpression: 'attribute_not_exists(pk)' })))
    .catch(() => undefined);
  expect(bill('refused')).toMatchObject({ writeUnits: 1 });
});

it('a transaction costs 2 units per item, and a cancelled one as much; a transactional read 2 per item', async () => {
  const put = (pk: string) => ({ Put: { TableName: TABLE, Item: { pk, sk: 's', data: padding(100) }, ConditionExpression: 'attribute_not_exists(pk)' } });
  await meter.measure('transaction', () => db.send(new TransactWriteCommand({ TransactItems: [put('t1'), put('t2'), put('t3')] })));
  expect(bill('transaction')).toMatchObject({ writeUnits: 6 });
  await meter.measure('cancelled', () => db.send(new TransactWriteCommand({ TransactItems: [put('t4'), put('t1')] }))).catch(() => undefined);
  expect(bill('cancelled')).toMatchObject({ writeUnits: 4 });
  await meter.measure('transactional read', () =>
    db.send(new TransactGetCommand({ TransactItems: ['t1', 't2', 'none'].map((pk) => ({ Get: { TableName: TABLE, Key: { pk, sk: 's' } } })) })),
  );
  expect(bill('transactional read')).toMatchObject({ readUnits: 6 });
});

it('a batch read costs each key as a read of its own, rounded up per item, a missing one the minimum; eventually consistent half', async () => {
  await db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'b-big', sk: 's', data: padding(5000) } }));
  const batch = (ConsistentRead: boolean) =>
    db.send(new BatchGetCommand({ RequestItems: { [TABLE]: { Keys: ['t1', 'b-big', 'none'].map((pk) => ({ pk, sk: 's' })), ConsistentRead } } }));
  await meter.measure('batch', () => batch(true));
  await meter.measure('eventual batch', () => batch(false));
  expect([bill('batch')?.readUnits, bill('eventual batch')?.readUnits]).toEqual([1 + 2 + 1, (1 + 2 + 1) / 2]);
});

it.each([
  ['the first key answered', 1, 1],
  ['none answered, no table in Responses', 0, 0],
])('a batch read bills no key DynamoDB left unprocessed: %s', async (title, answeredKeys, readUnits) => {
  const client = createDocumentClient(dynamo.endpoint);
  clients.push(client);
  const batchMeter = meterCapacity(client, clients[1], TABLE);
  leaveKeysUnprocessed(client, TABLE, answeredKeys);
  await batchMeter.measure(title, () =>
    client.send(new BatchGetCommand({ RequestItems: { [TABLE]: { Keys: ['t1', 'b-big', 'none'].map((pk) => ({ pk, sk: 's' })), ConsistentRead: true } } })),
  );
  expect(batchMeter.byLabel.get(title)?.readUnits).toBe(readUnits);
});

it('the index: entering 1, moving its key 2, leaving 1; a query the sum of its items, rounded up once', async () => {
  const key = { pk: 'i1', sk: 's' };
  await meter.measure('enter', () => db.send(new PutCommand({ TableName: TABLE, Item: { ...key, gsi1pk: 'DUE#999', gsi1sk: 'a' } })));
  const set = (expression: string, values?: Record<string, string>) =>
    db.send(new UpdateCommand({ TableName: TABLE, Key: key, UpdateExpression: expression, ExpressionAttributeValues: values }));
  await meter.measure('move', () => set('SET gsi1sk = :b', { ':b': 'b' }));
  await meter.measure('leave', () => set('REMOVE gsi1pk, gsi1sk'));
  expect([bill('enter'), bill('move'), bill('leave')].map((b) => [b?.writeUnits, b?.indexWriteUnits])).toEqual([
    [2, 1],
    [3, 2],
    [2, 1],
  ]);

  for (const sk of ['a', 'b', 'c'])
    await db.send(new PutCommand({ TableName: TABLE, Item: { pk: 'q', sk, gsi1pk: 'DUE#998', gsi1sk: sk, data: padding(2000) } }));
  await meter.measure('query', () =>
    db.send(
      new QueryCommand({ TableName: TABLE, IndexName: 'open-attempts', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': 'DUE#998' } }),
    ),
  );
  expect(bill('query')).toMatchObject({ readUnits: 1 }); // about 6 KB: 2 units of 4 KB, halved (the index is eventually consistent)
});
