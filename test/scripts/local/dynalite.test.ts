import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lib/store/dynamoClient';
import { LOCAL_TABLE_NAME } from '../../../scripts/local/constants';
import { startLocalDynamo } from '../../../scripts/local/dynalite';
import { createTables } from '../../../scripts/local/tables';

describe('the local database', () => {
  it('closed while requests are being answered answers them first: nothing writes to a closed database', async () => {
    const dynamo = await startLocalDynamo();
    await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
    const db = createDocumentClient(dynamo.endpoint);
    try {
      const writes = Array.from({ length: 20 }, (_, i) => db.send(new PutCommand({ TableName: LOCAL_TABLE_NAME, Item: { pk: `CLOSE#${i}`, sk: 'A' } })));
      // Closed as soon as the first is answered, with the others on their way or at work.
      await Promise.race(writes);
      const closed = dynamo.close();
      const results = await Promise.allSettled(writes);
      await closed;
      // Each write was either answered or never reached the database; none failed inside it.
      const failures = results.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
      expect(failures.filter((failure) => /Database is closed|InternalFailure|500/.test(failure))).toEqual([]);
    } finally {
      db.destroy();
      await dynamo.close();
    }
  });

  it('closes at once when idle, though the SDK keeps its connections alive', async () => {
    const dynamo = await startLocalDynamo();
    await createTables(dynamo.endpoint, LOCAL_TABLE_NAME);
    const db = createDocumentClient(dynamo.endpoint);
    await db.send(new PutCommand({ TableName: LOCAL_TABLE_NAME, Item: { pk: 'IDLE', sk: 'A' } }));
    const started = Date.now();
    await dynamo.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    db.destroy();
  });
});
