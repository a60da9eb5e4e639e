/**
 * npm run seed -- FILE.json
 * Writes a fixture (format: README, "Seeding") into the database at DYNAMODB_ENDPOINT.
 */
import { readFileSync } from 'node:fs';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { LOCAL_DYNAMODB_ENDPOINT, LOCAL_TABLE_NAME } from './local/constants';
import { writeFixture } from './local/fixtures';

export async function seedFile(file: string, endpoint: string, table: string): Promise<void> {
  const db = createDocumentClient(endpoint);
  try {
    await writeFixture(db, table, JSON.parse(readFileSync(file, 'utf8')));
  } finally {
    db.destroy();
  }
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: npm run seed -- FILE.json');
    process.exit(2);
  }
  const endpoint = process.env.DYNAMODB_ENDPOINT ?? LOCAL_DYNAMODB_ENDPOINT;
  const table = process.env.TABLE_NAME ?? LOCAL_TABLE_NAME;
  seedFile(file, endpoint, table).then(
    () => console.log(`seeded ${file} into ${table} at ${endpoint}`),
    (error: Error) => {
      console.error(`seed failed: ${error.message}`);
      process.exit(1);
    },
  );
}
