import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { parseDocument } from 'yaml';

const SERVERLESS_YML = join(__dirname, '..', '..', 'serverless.yml');

/**
 * The DynamoDB tables declared under `resources:` in serverless.yml, so the local database is
 * created from the same definition as the deployed one. `tableName` replaces the
 * `${self:custom.tableName}` variable, which only the framework resolves.
 */
export function tableDefinitionsFromServerlessYml(tableName: string): CreateTableCommandInput[] {
  // CloudFormation tags (!GetAtt, !Join) elsewhere in the file are irrelevant here: keep them as plain values.
  const document = parseDocument(readFileSync(SERVERLESS_YML, 'utf8'), { logLevel: 'silent' });
  type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
  // `resources:` is a list of fragments; the ones that are `${file(...)}` strings hold no table.
  const fragments = (document.toJS() as { resources: ({ Resources?: Resources } | string)[] }).resources;
  const resources = fragments.flatMap((fragment) => (typeof fragment === 'object' ? Object.values(fragment.Resources ?? {}) : []));
  return resources
    .filter((resource) => resource.Type === 'AWS::DynamoDB::Table')
    .map(({ Properties: p }) => ({
      TableName: tableName,
      BillingMode: p.BillingMode as CreateTableCommandInput['BillingMode'],
      AttributeDefinitions: p.AttributeDefinitions as CreateTableCommandInput['AttributeDefinitions'],
      KeySchema: p.KeySchema as CreateTableCommandInput['KeySchema'],
      // Warm throughput (stage params) means nothing to the local database.
      GlobalSecondaryIndexes: (p.GlobalSecondaryIndexes as NonNullable<CreateTableCommandInput['GlobalSecondaryIndexes']>).map(
        ({ IndexName, KeySchema, Projection }) => ({ IndexName, KeySchema, Projection }),
      ),
    }));
}

/** Creates the tables at `endpoint` unless they exist. */
export async function createTables(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'ap-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const definition of tableDefinitionsFromServerlessYml(tableName)) {
      try {
        await client.send(new CreateTableCommand(definition));
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) throw error;
      }
    }
  } finally {
    client.destroy();
  }
}
