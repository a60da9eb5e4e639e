/**
 * npm run reconcile
 * Lists the payments waiting for a refund and checks the points and payment invariants of every
 * user and order in the database at DYNAMODB_ENDPOINT (default: the local one). Exits 1 when an
 * invariant is broken; refunds to make are listed but are not errors.
 */
import { fenToYuan } from '../lib/domain/money';
import { createDocumentClient } from '../lib/store/dynamoClient';
import { reconcile } from '../lib/store/reconcile';
import { LOCAL_DYNAMODB_ENDPOINT, LOCAL_TABLE_NAME } from './local/constants';

async function main(): Promise<number> {
  const endpoint = process.env.DYNAMODB_ENDPOINT ?? LOCAL_DYNAMODB_ENDPOINT;
  const table = process.env.TABLE_NAME ?? LOCAL_TABLE_NAME;
  const db = createDocumentClient(endpoint);
  try {
    const report = await reconcile(db, table);
    const { users, orders, attempts, ledgerEntries } = report.counts;
    console.log(`reconcile ${table} at ${endpoint}: ${users} users, ${orders} orders, ${attempts} attempts, ${ledgerEntries} ledger entries`);
    console.log(`refund_required: ${report.refunds.length}`);
    for (const r of report.refunds) {
      console.log(
        `  ${r.outTradeNo}  order ${r.orderId}  user ${r.userId}  method ${r.method}  ${fenToYuan(r.cashFen)} yuan  gateway id ${r.transactionId ?? '?'}  paid ${r.paidAt ?? '?'}`,
      );
    }
    console.log(`problems: ${report.problems.length}`);
    for (const problem of report.problems) console.log(`  ${problem}`);
    return report.problems.length ? 1 : 0;
  } finally {
    db.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`reconcile failed: ${error.message}`);
    process.exit(2);
  },
);
