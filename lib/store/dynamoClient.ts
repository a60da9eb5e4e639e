import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * The document client every store shares. `endpoint` points at the local database; on AWS it is
 * unset and the SDK uses the Lambda's region and role.
 */
export function createDocumentClient(endpoint?: string): DynamoDBDocumentClient {
  const client = new DynamoDBClient(
    endpoint ? { endpoint, region: process.env.AWS_REGION ?? 'cn-north-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {},
  );
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}
