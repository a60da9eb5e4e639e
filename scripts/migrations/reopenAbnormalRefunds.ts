/**
 * npm run migrate:abnormal-refunds [-- --dry-run]
 * Once, on a table written before 2026-11-30, when a refund WeChat reported ABNORMAL was recorded
 * failed (its order back to paid, its points kept spent): each such refund that is still its attempt's
 * latest is made pending and marked ABNORMAL again, as it is recorded now, so that the sweeper follows
 * it up and records its success, points back once and `order.refunded` to the shop, when a person
 * sends it on at WeChat (or already has). One superseded by a later refund of the same attempt is only
 * listed: a person checks at WeChat that the payer is not refunded twice. One a person noted as handled
 * (`npm run handled`: paid back outside the gateways) is left alone.
 * A refund it reopened before it marked them (`reopened_at`, 2026-11-30) and whose first failure the shop
 * was told of is marked now, so that a second failure is told under an id of its own.
 * Against DYNAMODB_ENDPOINT and TABLE_NAME, as `npm run reconcile`. Conditional writes: run it again at
 * will. Exit 0: done (or nothing to do); 1: some listed for a person; 2: could not run.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { orderRefundFailedEvent } from '../../lib/domain/events';
import { ABNORMAL } from '../../lib/domain/refund';
import { DynamoPayStore } from '../../lib/store/dynamoPayStore';
import { type Item, toRefund } from '../../lib/store/items';
import { ENTITY } from '../../lib/store/keys';
import { scanAll } from '../../lib/store/scanAll';
import { runTableCommand } from '../tableCommand';

export interface ReopenReport {
  /** Made pending and marked ABNORMAL (or, with --dry-run, would be). */
  reopened: string[];
  /** Refunds recorded failed as ABNORMAL that a later refund of their attempt followed: for a person. */
  superseded: { outRefundNo: string; latest: string }[];
  /** Noted as handled by a person already (`npm run handled`): left alone. */
  handled: string[];
  /** Not as the code of before left them (changed meanwhile, or by hand): for a person, with reconcile. */
  movedOn: string[];
  /** Reopened by a run of before `reopened_at`, marked now (or, with --dry-run, would be). */
  marked: string[];
}

export async function reopenAbnormalRefunds(
  db: DynamoDBDocumentClient,
  table: string,
  options: { dryRun?: boolean; now?: () => Date } = {},
): Promise<ReopenReport> {
  const store = new DynamoPayStore(db, table);
  const report: ReopenReport = { reopened: [], superseded: [], handled: [], movedOn: [], marked: [] };
  for (const item of await failedAsAbnormal(db, table)) {
    const refund = toRefund(item);
    const latest = (await store.getAttempt(refund.outTradeNo))?.refundNo;
    if (refund.handledNote !== undefined) {
      report.handled.push(refund.outRefundNo);
    } else if (latest !== refund.outRefundNo) {
      report.superseded.push({ outRefundNo: refund.outRefundNo, latest: latest ?? 'none' });
    } else if (options.dryRun || (await store.reopenAbnormalRefund(refund, (options.now?.() ?? new Date()).toISOString()))) {
      report.reopened.push(refund.outRefundNo);
    } else {
      report.movedOn.push(refund.outRefundNo);
    }
  }
  const at = (options.now?.() ?? new Date()).toISOString();
  for (const item of await reopenedUnmarked(db, table)) {
    const refund = toRefund(item);
    // Only one whose first failure made an event: the id its second failure would take otherwise.
    if (!(await store.getEvent(orderRefundFailedEvent(refund, ABNORMAL, at).id))) continue;
    if (options.dryRun || (await store.markReopened(refund.outRefundNo, at))) report.marked.push(refund.outRefundNo);
  }
  return report;
}

/** Refunds pending and ABNORMAL without `reopened_at`: reopened by a run of before it was written, or ABNORMAL from the first answer. */
function reopenedUnmarked(db: DynamoDBDocumentClient, table: string): Promise<Item[]> {
  return scanAll(db, table, {
    FilterExpression: 'entity = :refund AND #status = :pending AND last_error = :abnormal AND attribute_not_exists(reopened_at)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':refund': ENTITY.refund, ':pending': 'pending', ':abnormal': ABNORMAL },
  });
}

/** Refunds the code of before recorded failed for ABNORMAL. */
function failedAsAbnormal(db: DynamoDBDocumentClient, table: string): Promise<Item[]> {
  return scanAll(db, table, {
    FilterExpression: 'entity = :refund AND #status = :failed AND failure_reason = :abnormal',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':refund': ENTITY.refund, ':failed': 'failed', ':abnormal': ABNORMAL },
  });
}

if (require.main === module) {
  runTableCommand('migration', async ({ db, table }) => {
    const dryRun = process.argv.includes('--dry-run');
    const report = await reopenAbnormalRefunds(db, table, { dryRun });
    console.log(`${dryRun ? 'would reopen' : 'reopened'} ${report.reopened.length}: ${report.reopened.join(' ') || '-'}`);
    if (report.marked.length) console.log(`${dryRun ? 'would mark' : 'marked'} reopened by an earlier run: ${report.marked.join(' ')}`);
    for (const { outRefundNo, latest } of report.superseded) {
      console.log(`for a person: ${outRefundNo} was followed by refund ${latest} of the same payment: check at WeChat that the payer is not refunded twice`);
    }
    if (report.handled.length) console.log(`left alone, a person noted them handled: ${report.handled.join(' ')}`);
    for (const outRefundNo of report.movedOn) {
      console.log(`for a person: ${outRefundNo}, its payment or order is no longer as it was recorded (changed meanwhile or by hand): npm run reconcile`);
    }
    return report.superseded.length || report.movedOn.length ? 1 : 0;
  });
}
