import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
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
});
