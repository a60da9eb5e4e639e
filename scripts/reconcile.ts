/**
 * npm run reconcile
 * Lists the payments waiting for a refund, the refunds that failed and those pending for more than a
 * day, and checks the points, payment and refund invariants of every user, order and attempt in the
 * database at DYNAMODB_ENDPOINT (default: the local one). Exits 1 when an invariant is broken; the
 * lists are work for a person, not errors.
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
    const { users, orders, attempts, refunds, ledgerEntries } = report.counts;
    console.log(
      `reconcile ${table} at ${endpoint}: ${users} users, ${orders} orders, ${attempts} attempts, ${refunds} refunds, ${ledgerEntries} ledger entries`,
    );
    console.log(`refund_required: ${report.refunds.length}`);
    for (const r of report.refunds) {
      console.log(
        `  ${r.outTradeNo}  order ${r.orderId}  user ${r.userId}  method ${r.method}  ${fenToYuan(r.cashFen)} yuan  gateway id ${r.transactionId ?? '?'}  paid ${r.paidAt ?? '?'}  refund ${r.refundNo ? `${r.refundNo} ${r.refundStatus}` : 'none (npm run refund)'}`,
      );
    }
    for (const [title, list] of [
      ['failed refunds', report.failedRefunds],
      ['refunds pending for more than a day', report.overdueRefunds],
    ] as const) {
      console.log(`${title}: ${list.length}`);
      for (const r of list) {
        console.log(
          `  ${r.outRefundNo}  order ${r.orderId}  ${r.kind}  ${fenToYuan(r.cashFen)} yuan  ${r.points} points  asked ${r.createdAt}  ${r.reason ?? ''}`.trimEnd(),
        );
      }
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
