/**
 * npm run handled -- refund OUT_REFUND_NO --note TEXT
 * npm run handled -- conflict OUT_TRADE_NO TRANSACTION_ID --note TEXT
 * Notes that a person has dealt with a case `npm run reconcile` lists as work, so that it stops listing
 * it (and exiting 1 for it): a failed refund (the payer withdrew the request, say) or a second payment of
 * a paid attempt (refunded in the merchant console). A failed refund whose cash a person repaid outside
 * the gateways is recorded with `npm run refund -- ORDER_ID --reason … --repaid-outside HOW` instead,
 * which refunds the order and gives its points back; a note alone does neither. The note says how;
 * it is kept on the item with the time. Against DYNAMODB_ENDPOINT and TABLE_NAME, as `npm run reconcile`.
 * Exit 0: noted; 1: no such case (no failed refund of that number, no such second payment); 2: usage.
 */
import { parseArgs } from 'node:util';
import { DynamoPayStore, type HandledCase } from '../lib/store/dynamoPayStore';
import { runTableCommand } from './tableCommand';

const USAGE = 'usage: npm run handled -- refund OUT_REFUND_NO --note TEXT | conflict OUT_TRADE_NO TRANSACTION_ID --note TEXT';

/** The case and note the arguments name, or undefined when they name none. */
export function parseHandled(argv: string[]): { subject: HandledCase; note: string } | undefined {
  let positionals: string[];
  let note: string | undefined;
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: true, options: { note: { type: 'string' } } });
    positionals = parsed.positionals;
    note = parsed.values.note?.trim();
  } catch {
    return undefined;
  }
  const [kind, ...ids] = positionals;
  if (!note) return undefined;
  if (kind === 'refund' && ids.length === 1) return { subject: { outRefundNo: ids[0] }, note };
  if (kind === 'conflict' && ids.length === 2) return { subject: { outTradeNo: ids[0], transactionId: ids[1] }, note };
  return undefined;
}

if (require.main === module) {
  const request = parseHandled(process.argv.slice(2));
  if (!request) {
    console.error(USAGE);
    process.exit(2);
  }
  runTableCommand('handled', async ({ db, table }) => {
    const { subject, note } = request;
    const [what, missing] =
      'outRefundNo' in subject
        ? [`refund ${subject.outRefundNo}`, 'no refund of that number failed']
        : [`second payment ${subject.transactionId} of ${subject.outTradeNo}`, 'no such second payment was kept'];
    if (await new DynamoPayStore(db, table).markHandled(subject, note, new Date().toISOString())) {
      console.log(`${what}: noted as handled`);
      return 0;
    }
    console.log(`${what}: not noted, ${missing}`);
    return 1;
  });
}
