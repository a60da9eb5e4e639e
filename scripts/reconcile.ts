/**
 * npm run reconcile
 * Lists the payments waiting for a refund, the refunds that failed and those pending for more than a
 * day, and checks the points, payment and refund invariants of every user, order and attempt in the
 * database at DYNAMODB_ENDPOINT (default: the local one).
 *
 * Exit 0: nothing needs anyone (information such as orders imported as paid outside paynow, or
 * refunds on their way, is printed but is not a finding). 1: a person must act: an invariant is broken
 * ("problems"), or money waits for a person ("needs a person": a refund case no refund was begun for, a
 * failed refund, a refund pending for more than a day, a second payment of a paid attempt kept for a
 * person). 2: reconcile could not run.
 */
import { fenToYuan } from '../lib/domain/money';
import { type ReconcileReport, reconcile } from '../lib/store/reconcile';
import { runTableCommand } from './tableCommand';

/** 1 when a person must act (a broken invariant, or money waiting for a person), else 0. */
export function exitCodeOf(report: ReconcileReport): 0 | 1 {
  return report.problems.length || report.needsPerson.length ? 1 : 0;
}

/** The report as `npm run reconcile` prints it: the lists, then what needs a person, what is only information, and the problems. */
export function describeReport(report: ReconcileReport): string[] {
  const lines = [`refund_required: ${report.refunds.length}`];
  for (const r of report.refunds) {
    lines.push(
      `  ${r.outTradeNo}  order ${r.orderId}  user ${r.userId}  method ${r.method}  ${fenToYuan(r.cashFen)} yuan  gateway id ${r.transactionId ?? '?'}  paid ${r.paidAt ?? '?'}  refund ${r.refundNo ? `${r.refundNo} ${r.refundStatus}` : 'none (npm run refund)'}`,
    );
  }
  for (const [title, list] of [
    ['failed refunds', report.failedRefunds],
    ["abnormal refunds (WeChat cannot pay them into the payer's account)", report.abnormalRefunds],
    ['refunds pending for more than a day', report.overdueRefunds],
  ] as const) {
    lines.push(`${title}: ${list.length}`);
    for (const r of list) {
      lines.push(
        `  ${r.outRefundNo}  order ${r.orderId}  ${r.kind}  ${fenToYuan(r.cashFen)} yuan  ${r.points} points  asked ${r.createdAt}  ${r.reason ?? ''}`.trimEnd(),
      );
    }
  }
  lines.push(`needs a person: ${report.needsPerson.length}`, ...report.needsPerson.map((line) => `  ${line}`));
  lines.push(`information: ${report.info.length ? '' : 'none'}`.trimEnd(), ...report.info.map((line) => `  ${line}`));
  lines.push(`problems: ${report.problems.length}`, ...report.problems.map((problem) => `  ${problem}`));
  return lines;
}

if (require.main === module) {
  runTableCommand('reconcile', async ({ db, table, endpoint }) => {
    const report = await reconcile(db, table);
    const { users, orders, attempts, refunds, ledgerEntries } = report.counts;
    console.log(
      `reconcile ${table} at ${endpoint}: ${users} users, ${orders} orders, ${attempts} attempts, ${refunds} refunds, ${ledgerEntries} ledger entries`,
    );
    console.log(describeReport(report).join('\n'));
    return exitCodeOf(report);
  });
}
