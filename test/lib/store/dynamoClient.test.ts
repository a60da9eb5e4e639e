import { ConditionalCheckFailedException, TransactionConflictException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { WriteConflict } from '../../../lib/store/payStore';
import { LOCAL_TABLE_NAME } from '../../../scripts/local/constants';
import { type LocalDynamo, startLocalDynamo } from '../../../scripts/local/dynalite';
import { createTables } from '../../../scripts/local/tables';

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startLocalDynamo();
  await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
});
afterAll(() => dynamo.close());

describe('the document client', () => {
  it('drops an undefined value at any depth, so an optional field left unset inside a map never fails a write', async () => {
    const db = createDocumentClient(dynamo.endpoint);
    try {
      const item = { pk: 'CLIENT#1', sk: 'A', top: undefined, summary: { out_trade_no: '9T1', prepay_id: undefined }, list: [{ at: 'x', why: undefined }] };
      await db.send(new PutCommand({ TableName: LOCAL_TABLE_NAME, Item: item }));
      const { Item } = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: { pk: 'CLIENT#1', sk: 'A' }, ConsistentRead: true }));
      expect(Item).toEqual({ pk: 'CLIENT#1', sk: 'A', summary: { out_trade_no: '9T1' }, list: [{ at: 'x' }] });
    } finally {
      db.destroy();
    }
  });

  it('for the local database: the local credentials, in the configured region or else cn-north-1', async () => {
    const region = process.env.AWS_REGION;
    try {
      delete process.env.AWS_REGION;
      const local = createDocumentClient(dynamo.endpoint);
      expect(await local.config.region()).toBe('cn-north-1');
      expect(await (local.config.credentials as () => Promise<{ accessKeyId: string; secretAccessKey: string }>)()).toMatchObject({
        accessKeyId: 'local',
        secretAccessKey: 'local',
      });
      local.destroy();
      process.env.AWS_REGION = 'ap-east-1';
      const regional = createDocumentClient(dynamo.endpoint);
      expect(await regional.config.region()).toBe('ap-east-1');
      regional.destroy();
    } finally {
      if (region === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = region;
    }
  });

  describe('a single-item write that meets a transaction in flight on its item', () => {
    /**
     * DynamoDB's answer while a transaction writes the item (TransactionConflictException), to the first
     * `times` UpdateItem requests of the client, before they reach the database; the rest go through.
     */
    function conflicting(db: DynamoDBDocumentClient, times: number): { sent: number } {
      const seen = { sent: 0 };
      db.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'UpdateItemCommand') return next(args);
          seen.sent++;
          if (seen.sent <= times)
            throw new TransactionConflictException({ message: 'Transaction is ongoing for the item', $metadata: { httpStatusCode: 400 } });
          return next(args);
        },
        { step: 'deserialize', priority: 'low', name: 'rejectWhileTransactionInFlight' },
      );
      return seen;
    }
    const key = (n: number) => ({ pk: `CLIENT#CONFLICT${n}`, sk: 'A' });
    const increment = (n: number) =>
      new UpdateCommand({
        TableName: LOCAL_TABLE_NAME,
        Key: key(n),
        ConditionExpression: 'attribute_exists(pk)',
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': 1 },
      });

    it("is sent again after a backoff, and lands once: rejected on every try but the client's last, the last writes it", async () => {
      const db = createDocumentClient(dynamo.endpoint);
      try {
        const tries = await db.config.maxAttempts();
        expect(tries).toBeGreaterThanOrEqual(3);
        await db.send(new PutCommand({ TableName: LOCAL_TABLE_NAME, Item: { ...key(1), n: 0 } }));
        const seen = conflicting(db, tries - 1);
        const answer = await db.send(increment(1));
        expect(seen.sent).toBe(tries);
        expect(answer.$metadata.attempts).toBe(tries);
        const { Item } = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: key(1), ConsistentRead: true }));
        expect(Item).toMatchObject({ n: 1 });
      } finally {
        db.destroy();
      }
    });

    it("is given up after the client's tries as a lost race (WriteConflict, DynamoDB's answer its cause), having written nothing; a failed condition is never sent again", async () => {
      const db = createDocumentClient(dynamo.endpoint);
      try {
        const tries = await db.config.maxAttempts();
        await db.send(new PutCommand({ TableName: LOCAL_TABLE_NAME, Item: { ...key(2), n: 0 } }));
        const seen = conflicting(db, tries);
        const lost = await db.send(increment(2)).catch((error: unknown) => error);
        expect(lost).toEqual(new WriteConflict('state'));
        expect((lost as Error).message).toBe('conditional write failed on state');
        expect((lost as Error).cause).toBeInstanceOf(TransactionConflictException);
        expect(seen.sent).toBe(tries);
        const { Item } = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: key(2), ConsistentRead: true }));
        expect(Item).toMatchObject({ n: 0 });
        // An answer about the state itself is final at once.
        await expect(db.send(increment(3))).rejects.toBeInstanceOf(ConditionalCheckFailedException);
        expect(seen.sent).toBe(tries + 1);
      } finally {
        db.destroy();
      }
    });
  });
});
