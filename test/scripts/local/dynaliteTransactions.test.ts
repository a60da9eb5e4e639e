import { crc32 } from 'node:zlib';
import {
  CreateTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  TransactGetItemsCommand,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactGetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { type LocalDynamo, startLocalDynamo } from '../../../scripts/local/dynalite';
import { rejection } from '../../support/rejection';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const ACCOUNTS = 'Accounts'; // id; GSI byOwner(owner)
const RECORDS = 'Records'; // pk + sk

let dynamo: LocalDynamo;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  dynamo = await startLocalDynamo();
  client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  doc = DynamoDBDocumentClient.from(client);
  await client.send(
    new CreateTableCommand({
      TableName: ACCOUNTS,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'id', AttributeType: 'S' },
        { AttributeName: 'owner', AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byOwner',
          KeySchema: [{ AttributeName: 'owner', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  await client.send(
    new CreateTableCommand({
      TableName: RECORDS,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.close();
});

const put = (TableName: string, Item: Record<string, unknown>) => doc.send(new PutCommand({ TableName, Item }));
const account = async (id: string) => (await doc.send(new GetCommand({ TableName: ACCOUNTS, Key: { id }, ConsistentRead: true }))).Item;
const record = async (pk: string, sk: string) => (await doc.send(new GetCommand({ TableName: RECORDS, Key: { pk, sk } }))).Item;
const transact = (TransactItems: TransactItem[], extra: Partial<TransactWriteCommandInput> = {}) =>
  doc.send(new TransactWriteCommand({ TransactItems, ...extra }));
async function cancellation(promise: Promise<unknown>): Promise<TransactionCanceledException> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(TransactionCanceledException);
  return err as TransactionCanceledException;
}

const debit = (id: string, n: number): TransactItem => ({
  Update: {
    TableName: ACCOUNTS,
    Key: { id },
    UpdateExpression: 'SET balance = balance - :n',
    ConditionExpression: 'balance >= :n',
    ExpressionAttributeValues: { ':n': n },
  },
});
const credit = (id: string, n: number): TransactItem => ({
  Update: { TableName: ACCOUNTS, Key: { id }, UpdateExpression: 'SET balance = balance + :n', ExpressionAttributeValues: { ':n': n } },
});
const newRecord = (pk: string, sk: string, fields: Record<string, unknown> = {}): TransactItem => ({
  Put: { TableName: RECORDS, Item: { pk, sk, ...fields }, ConditionExpression: 'attribute_not_exists(pk)' },
});

/**
 * A deadlock's deadline: well above what these runs take on a loaded machine (150 transactions took over
 * 10 s under coverage instrumentation beside a mutation run), below jest's 30 s test timeout.
 */
const DEADLOCK_MS = 20_000;

/** Fails the test instead of hanging it when the promise does not settle (a deadlock). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('TransactWriteItems', () => {
  test('commits Put, Update and Delete across two tables', async () => {
    await put(ACCOUNTS, { id: 'commit-a', owner: 'commit', balance: 10 });
    await put(RECORDS, { pk: 'commit', sk: 'old' });

    await expect(
      transact([
        newRecord('commit', 'new', { amount: 3 }),
        debit('commit-a', 3),
        { Delete: { TableName: RECORDS, Key: { pk: 'commit', sk: 'old' }, ConditionExpression: 'attribute_exists(pk)' } },
      ]),
    ).resolves.toBeDefined();

    expect(await record('commit', 'new')).toEqual({ pk: 'commit', sk: 'new', amount: 3 });
    expect(await account('commit-a')).toEqual({ id: 'commit-a', owner: 'commit', balance: 7 });
    expect(await record('commit', 'old')).toBeUndefined();
  });

  test('a failed condition leaves every item unchanged and gives one reason per item, in order, through the SDK', async () => {
    await put(ACCOUNTS, { id: 'cancel-a', balance: 5 });
    await put(ACCOUNTS, { id: 'cancel-b', balance: 5 });
    await put(RECORDS, { pk: 'cancel', sk: 'keep' });

    const err = await cancellation(
      transact([
        credit('cancel-a', 1),
        debit('cancel-b', 10),
        newRecord('cancel', 'new'),
        { Delete: { TableName: RECORDS, Key: { pk: 'cancel', sk: 'keep' } } },
        debit('cancel-missing', 1),
      ]),
    );

    expect(err.name).toBe('TransactionCanceledException');
    expect(err.message).toBe(
      'Transaction cancelled, please refer cancellation reasons for specific reasons ' + '[None, ConditionalCheckFailed, None, None, ConditionalCheckFailed]',
    );
    expect(err.CancellationReasons).toEqual([
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
    ]);
    expect(await account('cancel-a')).toEqual({ id: 'cancel-a', balance: 5 });
    expect(await account('cancel-b')).toEqual({ id: 'cancel-b', balance: 5 });
    expect(await record('cancel', 'new')).toBeUndefined();
    expect(await record('cancel', 'keep')).toEqual({ pk: 'cancel', sk: 'keep' });
    expect(await account('cancel-missing')).toBeUndefined();
  });

  test("the cancellation is DynamoDB's JSON 1.0 reply on the wire", async () => {
    await put(ACCOUNTS, { id: 'wire-a', balance: 1 });
    const res = await fetch(dynamo.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.TransactWriteItems',
        authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      },
      body: JSON.stringify({
        TransactItems: [
          {
            ConditionCheck: {
              TableName: ACCOUNTS,
              Key: { id: { S: 'wire-a' } },
              ConditionExpression: 'balance > :n',
              ExpressionAttributeValues: { ':n': { N: '1' } },
            },
          },
          { Put: { TableName: RECORDS, Item: { pk: { S: 'wire' }, sk: { S: 'x' } } } },
        ],
      }),
    });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.0');
    expect(res.headers.get('x-amz-crc32')).toBe(String(crc32(text)));
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[A-Z0-9]{52}$/);
    expect(JSON.parse(text)).toEqual({
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]',
      CancellationReasons: [{ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' }, { Code: 'None' }],
    });
    expect(await record('wire', 'x')).toBeUndefined();
  });

  test("ReturnValuesOnConditionCheckFailure ALL_OLD puts the current item in that item's reason only", async () => {
    await put(ACCOUNTS, { id: 'old-a', owner: 'old', balance: 2 });
    await put(RECORDS, { pk: 'old', sk: 'taken', by: 'someone' });

    const debitOrShowItem: TransactItem = { Update: { ...debit('old-a', 5).Update!, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } };
    const err = await cancellation(transact([debitOrShowItem, newRecord('old', 'taken')]));

    expect(err.CancellationReasons).toEqual([
      {
        Code: 'ConditionalCheckFailed',
        Message: 'The conditional request failed',
        Item: { id: { S: 'old-a' }, owner: { S: 'old' }, balance: { N: '2' } },
      },
      { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
    ]);
  });

  test('ConditionCheck gates the other writes and never writes its own item', async () => {
    await put(ACCOUNTS, { id: 'check-a', status: 'open' });
    const isOpen: TransactItem = {
      ConditionCheck: {
        TableName: ACCOUNTS,
        Key: { id: 'check-a' },
        ConditionExpression: '#s = :open',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':open': 'open' },
      },
    };

    await transact([isOpen, newRecord('check', '1')]);
    expect(await record('check', '1')).toBeDefined();
    expect(await account('check-a')).toEqual({ id: 'check-a', status: 'open' });

    await put(ACCOUNTS, { id: 'check-a', status: 'closed' });
    const err = await cancellation(transact([newRecord('check', '2'), isOpen]));
    expect(err.CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'ConditionalCheckFailed']);
    expect(await record('check', '2')).toBeUndefined();
  });

  test('an update that cannot apply cancels with a ValidationError reason', async () => {
    await put(ACCOUNTS, { id: 'type-a', balance: 'not a number' });
    const err = await cancellation(transact([credit('type-a', 1), newRecord('type', '1')]));
    expect(err.CancellationReasons).toEqual([
      { Code: 'ValidationError', Message: 'An operand in the update expression has an incorrect data type' },
      { Code: 'None' },
    ]);
    expect(await record('type', '1')).toBeUndefined();
  });

  test('keeps the GSI right through transactional put, update and delete (and not on cancel)', async () => {
    const byOwner = async (owner: string) =>
      (
        await doc.send(
          new QueryCommand({
            TableName: ACCOUNTS,
            IndexName: 'byOwner',
            KeyConditionExpression: '#o = :o',
            ExpressionAttributeNames: { '#o': 'owner' },
            ExpressionAttributeValues: { ':o': owner },
          }),
        )
      ).Items;

    await transact([{ Put: { TableName: ACCOUNTS, Item: { id: 'gsi-a', owner: 'gsi-1', balance: 1 } } }]);
    expect(await byOwner('gsi-1')).toEqual([{ id: 'gsi-a', owner: 'gsi-1', balance: 1 }]);

    await transact([
      {
        Update: {
          TableName: ACCOUNTS,
          Key: { id: 'gsi-a' },
          UpdateExpression: 'SET #o = :o, balance = :b',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': 'gsi-2', ':b': 2 },
        },
      },
    ]);
    expect(await byOwner('gsi-1')).toEqual([]);
    expect(await byOwner('gsi-2')).toEqual([{ id: 'gsi-a', owner: 'gsi-2', balance: 2 }]);

    await cancellation(
      transact([
        { Delete: { TableName: ACCOUNTS, Key: { id: 'gsi-a' } } },
        { ConditionCheck: { TableName: ACCOUNTS, Key: { id: 'gsi-missing' }, ConditionExpression: 'attribute_exists(id)' } },
      ]),
    );
    expect(await byOwner('gsi-2')).toHaveLength(1);

    await transact([{ Delete: { TableName: ACCOUNTS, Key: { id: 'gsi-a' } } }]);
    expect(await byOwner('gsi-2')).toEqual([]);
  });

  describe('rejects what DynamoDB rejects, before writing anything', () => {
    test('more than 100 items', async () => {
      const items = Array.from({ length: 101 }, (_, i) => newRecord('limit', String(i)));
      const err = await rejection(transact(items));
      expect(err.name).toBe('ValidationException');
      expect(err.message).toMatch(/at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100$/);
      expect(await record('limit', '0')).toBeUndefined();
    });

    test('100 items are fine', async () => {
      await transact(Array.from({ length: 100 }, (_, i) => newRecord('limit100', String(i))));
      expect(await record('limit100', '99')).toBeDefined();
    });

    test('no items', async () => {
      const err = await rejection(transact([]));
      expect(err.name).toBe('ValidationException');
      expect(err.message).toMatch(/Member must have length greater than or equal to 1$/);
    });

    test('the same item twice', async () => {
      const err = await rejection(transact([newRecord('dup', '1'), { Delete: { TableName: RECORDS, Key: { pk: 'dup', sk: '1' } } }]));
      expect(err.name).toBe('ValidationException');
      expect(err.message).toBe('Transaction request cannot include multiple operations on one item');
      expect(await record('dup', '1')).toBeUndefined();
    });

    test('an unknown table', async () => {
      const err = await rejection(transact([newRecord('nt', '1'), { Put: { TableName: 'NoSuchTable', Item: { id: 'x' } } }]));
      expect(err).toBeInstanceOf(ResourceNotFoundException);
      expect(await record('nt', '1')).toBeUndefined();
    });

    test('more or less than one action in an item', async () => {
      const two = { ...newRecord('two', '1'), Delete: { TableName: RECORDS, Key: { pk: 'two', sk: '2' } } };
      await expect(transact([two])).rejects.toThrow('TransactItems can only contain one of Check, Put, Update or Delete');
      await expect(transact([{}])).rejects.toThrow('TransactItems can only contain one of Check, Put, Update or Delete');
    });

    test('sub-actions are validated like the single-item operations', async () => {
      await expect(transact([{ Put: { TableName: RECORDS, Item: { pk: 'v' } } }])).rejects.toThrow(
        'One or more parameter values were invalid: Missing the key sk in the item',
      );
      await expect(
        transact([{ Update: { TableName: ACCOUNTS, Key: { id: 'v' }, UpdateExpression: 'SET id = :x', ExpressionAttributeValues: { ':x': 'y' } } }]),
      ).rejects.toThrow('Cannot update attribute id. This attribute is part of the key');
      await expect(transact([{ ConditionCheck: { TableName: ACCOUNTS, Key: { id: 'v' }, ConditionExpression: 'balance >' } }])).rejects.toThrow(
        /^Invalid ConditionExpression: Syntax error/,
      );
      await expect(
        transact([
          { Delete: { TableName: ACCOUNTS, Key: { id: 'v' }, ConditionExpression: 'a = :unused', ExpressionAttributeValues: { ':unused': 1, ':extra': 2 } } },
        ]),
      ).rejects.toThrow('Value provided in ExpressionAttributeValues unused in expressions: keys: {:extra}');
    });
  });

  test('a repeated ClientRequestToken is applied once; reused with other parameters it is refused', async () => {
    await put(ACCOUNTS, { id: 'token-a', balance: 0 });
    const once = [credit('token-a', 1)];
    await transact(once, { ClientRequestToken: 'token-1' });
    await transact(once, { ClientRequestToken: 'token-1' });
    expect((await account('token-a'))?.balance).toBe(1);

    const err = await rejection(transact([credit('token-a', 2)], { ClientRequestToken: 'token-1' }));
    expect(err.name).toBe('IdempotentParameterMismatchException');
    await transact(once, { ClientRequestToken: 'token-2' });
    expect((await account('token-a'))?.balance).toBe(2);
  });
});

describe('TransactGetItems', () => {
  test('returns the items in request order, {} for a missing one, with projections', async () => {
    await put(ACCOUNTS, { id: 'get-a', owner: 'get', balance: 4, secret: 's' });
    await put(RECORDS, { pk: 'get', sk: '1', note: 'n' });

    const out = await client.send(
      new TransactGetItemsCommand({
        TransactItems: [
          { Get: { TableName: RECORDS, Key: { pk: { S: 'get' }, sk: { S: '1' } } } },
          { Get: { TableName: ACCOUNTS, Key: { id: { S: 'get-missing' } } } },
          { Get: { TableName: ACCOUNTS, Key: { id: { S: 'get-a' } }, ProjectionExpression: 'id, #b', ExpressionAttributeNames: { '#b': 'balance' } } },
        ],
      }),
    );

    expect(out.Responses).toEqual([
      { Item: { pk: { S: 'get' }, sk: { S: '1' }, note: { S: 'n' } } },
      {},
      { Item: { id: { S: 'get-a' }, balance: { N: '4' } } },
    ]);
  });

  test('validates like DynamoDB', async () => {
    const get = (TableName: string) => ({ Get: { TableName, Key: { id: 'x' } } });
    await expect(doc.send(new TransactGetCommand({ TransactItems: [get('NoSuchTable')] }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(doc.send(new TransactGetCommand({ TransactItems: Array.from({ length: 101 }, () => get(ACCOUNTS)) }))).rejects.toThrow(
      /Member must have length less than or equal to 100$/,
    );
    await expect(doc.send(new TransactGetCommand({ TransactItems: [{ Get: { TableName: RECORDS, Key: { pk: 'x' } } }] }))).rejects.toThrow(
      'The provided key element does not match the schema',
    );
  });
});

describe('under concurrency', () => {
  test('50 concurrent conditional decrements of one balance never oversell, and records match', async () => {
    await put(ACCOUNTS, { id: 'stock', balance: 100 });
    // Open the client's connections first, so that the 50 transactions really arrive together.
    await Promise.all(Array.from({ length: 50 }, () => account('stock')));

    const outcomes = await within(
      DEADLOCK_MS,
      Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          transact([debit('stock', 7), newRecord('sale', `tx-${i}`)]).then(
            () => 'sold',
            (err: TransactionCanceledException) => err.CancellationReasons?.map((r) => r.Code).join(),
          ),
        ),
      ),
    );

    const sold = outcomes.filter((o) => o === 'sold').length;
    expect(sold).toBe(14); // floor(100 / 7)
    expect(outcomes.filter((o) => o !== 'sold')).toEqual(Array(36).fill('ConditionalCheckFailed,None'));
    expect((await account('stock'))?.balance).toBe(100 - 7 * sold);
    const records = await doc.send(
      new QueryCommand({
        TableName: RECORDS,
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': 'sale' },
        Select: 'COUNT',
      }),
    );
    expect(records.Count).toBe(sold);
  });

  test('200 opposite-direction transfers, in one table and across two, never deadlock and conserve the total', async () => {
    await put(ACCOUNTS, { id: 'left', balance: 1000 });
    await put(ACCOUNTS, { id: 'right', balance: 1000 });
    await put(RECORDS, { pk: 'far', sk: 'right', balance: 1000 });
    const farDebit = (n: number): TransactItem => ({
      Update: {
        TableName: RECORDS,
        Key: { pk: 'far', sk: 'right' },
        UpdateExpression: 'SET balance = balance - :n',
        ConditionExpression: 'balance >= :n',
        ExpressionAttributeValues: { ':n': n },
      },
    });
    const farCredit = (n: number): TransactItem => ({
      Update: { TableName: RECORDS, Key: { pk: 'far', sk: 'right' }, UpdateExpression: 'SET balance = balance + :n', ExpressionAttributeValues: { ':n': n } },
    });

    const transfers = Array.from({ length: 200 }, (_, i) => {
      const n = 1 + (i % 5);
      const items = [
        [debit('left', n), credit('right', n)], // same table, left -> right
        [debit('right', n), credit('left', n)], // same table, right -> left
        [debit('left', n), farCredit(n)], // Accounts first
        [farDebit(n), credit('left', n)], // Records first
      ][i % 4];
      return transact(items);
    });
    await within(DEADLOCK_MS, Promise.all(transfers));

    const far = await record('far', 'right');
    const total = Number((await account('left'))?.balance) + Number((await account('right'))?.balance) + Number(far?.balance);
    expect(total).toBe(3000);
  });

  test('readers never see a half-applied transaction', async () => {
    await put(RECORDS, { pk: 'pair', sk: 'a', v: 50 });
    await put(RECORDS, { pk: 'pair', sk: 'b', v: 50 });
    const move = (from: string, to: string): TransactItem[] => [
      { Update: { TableName: RECORDS, Key: { pk: 'pair', sk: from }, UpdateExpression: 'SET v = v - :one', ExpressionAttributeValues: { ':one': 1 } } },
      { Update: { TableName: RECORDS, Key: { pk: 'pair', sk: to }, UpdateExpression: 'SET v = v + :one', ExpressionAttributeValues: { ':one': 1 } } },
    ];

    let writing = true;
    const sums: number[] = [];
    const viaQuery = async () => {
      while (writing) {
        const { Items = [] } = await doc.send(
          new QueryCommand({
            TableName: RECORDS,
            KeyConditionExpression: 'pk = :p',
            ExpressionAttributeValues: { ':p': 'pair' },
            ConsistentRead: true,
          }),
        );
        sums.push(Items.reduce((sum, item) => sum + Number(item.v), 0));
      }
    };
    const viaTransactGet = async () => {
      while (writing) {
        const { Responses = [] } = await doc.send(
          new TransactGetCommand({
            TransactItems: ['a', 'b'].map((sk) => ({ Get: { TableName: RECORDS, Key: { pk: 'pair', sk } } })),
          }),
        );
        sums.push(Responses.reduce((sum, r) => sum + Number(r?.Item?.v), 0));
      }
    };
    const readers = [viaQuery(), viaQuery(), viaTransactGet(), viaTransactGet()];
    const writers = Array.from({ length: 150 }, (_, i) => transact(i % 2 ? move('a', 'b') : move('b', 'a')));
    try {
      await within(DEADLOCK_MS, Promise.all(writers));
    } finally {
      // Stop the readers even when the writes time out: left reading while afterAll stops dynalite, their
      // ECONNREFUSED was an unhandled rejection that took the whole jest process down with it.
      writing = false;
      await Promise.allSettled(readers);
    }
    await Promise.all(readers);

    expect(sums.length).toBeGreaterThan(20);
    expect(sums.filter((sum) => sum !== 100)).toEqual([]);
  });
});

test('every other operation is still served by dynalite', async () => {
  const res = await fetch(dynamo.endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.UpdateTimeToLive',
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: '{}',
  });
  expect(await res.json()).toEqual({ __type: 'com.amazon.coral.service#UnknownOperationException' });
  expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual([ACCOUNTS, RECORDS]);
});
