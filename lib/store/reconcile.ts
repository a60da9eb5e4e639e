import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { RELEASED_ATTEMPT_STATUSES } from '../domain/model';
import { type Clock, systemClock } from '../domain/time';
import type { Item } from './items';
import { ENTITY, type Entity, INDEX_PARTITION, type LedgerKind } from './keys';

const RELEASED: readonly string[] = RELEASED_ATTEMPT_STATUSES;
/** The sweeper settles an open attempt within minutes of its expiry; one still open long after needs a person. */
const STUCK_AFTER_EXPIRY_MS = 15 * 60_000;

export interface RefundCase {
  outTradeNo: string;
  orderId: number;
  userId: number;
  method: number;
  cashFen: number;
  transactionId?: string;
  paidAt?: string;
}

export interface ReconcileReport {
  /** Invariant violations: each one is a bug or a manual edit to look at. */
  problems: string[];
  /** Money that arrived for an order that could not take it: to be refunded by a person. */
  refunds: RefundCase[];
  counts: { users: number; orders: number; attempts: number; ledgerEntries: number };
}

/**
 * Checks the whole table (an operator's tool: it scans). Per user: available + held + spent =
 * credited, every bucket matches the ledger, and held = the points of the user's open attempts.
 * Per order and attempt: a paying order has exactly its open attempt, a paid order its paid attempt,
 * no paid attempt is left off its order (a payment nobody recorded), every attempt is in the index
 * its state needs, and none is still open long after its expiry.
 */
export async function reconcile(db: DynamoDBDocumentClient, table: string, now: Clock = systemClock): Promise<ReconcileReport> {
  const items = await scanAll(db, table);
  const byEntity = (entity: Entity) => items.filter((i) => i.entity === entity);
  const accounts = byEntity(ENTITY.account);
  const ledger = byEntity(ENTITY.ledger);
  const orders = new Map(byEntity(ENTITY.order).map((o) => [o.order_id as number, o]));
  const attempts = byEntity(ENTITY.attempt);
  const attemptsByNo = new Map(attempts.map((a) => [a.out_trade_no as string, a]));
  const problems: string[] = [];
  const nowMs = now().getTime();

  for (const account of accounts) {
    const user = account.user_id as number;
    const [available, held, spent, credited] = ['integral_available', 'integral_held', 'integral_spent', 'integral_credited'].map((k) =>
      Number(account[k] ?? 0),
    );
    if (available < 0 || held < 0 || spent < 0) problems.push(`user ${user}: negative points (available ${available}, held ${held}, spent ${spent})`);
    if (available + held + spent !== credited) {
      problems.push(`user ${user}: available ${available} + held ${held} + spent ${spent} != credited ${credited}`);
    }
    const moves = ledger.filter((e) => e.user_id === user);
    const sum = (kind: LedgerKind) => moves.filter((e) => e.kind === kind).reduce((total, e) => total + Number(e.points), 0);
    const ledgerHeld = sum('hold') - sum('release') - sum('capture');
    const ledgerSpent = sum('spend') + sum('capture');
    if (held !== ledgerHeld) problems.push(`user ${user}: held ${held} but the ledger says ${ledgerHeld}`);
    if (spent !== ledgerSpent) problems.push(`user ${user}: spent ${spent} but the ledger says ${ledgerSpent}`);
    const openHeld = attempts.filter((a) => a.user_id === user && a.status === 'open').reduce((total, a) => total + Number(a.points), 0);
    if (held !== openHeld) problems.push(`user ${user}: held ${held} but open attempts hold ${openHeld}`);
  }

  for (const order of orders.values()) {
    const id = order.order_id as number;
    const open = (order.open_attempt as Item | undefined)?.out_trade_no as string | undefined;
    if (order.status === 'paying') {
      const attempt = open ? attemptsByNo.get(open) : undefined;
      if (attempt?.status !== 'open') problems.push(`order ${id}: paying with ${open ?? 'no attempt'}, which is ${attempt?.status ?? 'missing'}`);
    } else if (open && attemptsByNo.get(open)?.status === 'open') {
      problems.push(`order ${id}: ${order.status} but its attempt ${open} is still open`);
    }
    if (order.status === 'paid' && attemptsByNo.get(order.paid_attempt as string)?.status !== 'paid') {
      problems.push(`order ${id}: paid by ${String(order.paid_attempt)}, which is not a paid attempt`);
    }
  }

  for (const attempt of attempts) {
    const no = attempt.out_trade_no as string;
    const order = orders.get(attempt.order_id as number);
    if (attempt.status === 'open' && (order?.status !== 'paying' || (order.open_attempt as Item | undefined)?.out_trade_no !== no)) {
      problems.push(`attempt ${no}: open but its order is not paying with it`);
    }
    const indexed = attempt.gsi1pk as string | undefined;
    const expectedIndex: (string | undefined)[] =
      attempt.status === 'open' ? [INDEX_PARTITION.open] : RELEASED.includes(attempt.status as string) ? [undefined, INDEX_PARTITION.watch] : [undefined];
    if (!expectedIndex.includes(indexed)) problems.push(`attempt ${no}: ${String(attempt.status)} but indexed as ${indexed ?? 'nothing'}`);
    if (attempt.status === 'open' && nowMs - Date.parse(attempt.expires_at as string) > STUCK_AFTER_EXPIRY_MS) {
      problems.push(`attempt ${no}: still open ${Math.round((nowMs - Date.parse(attempt.expires_at as string)) / 60_000)} minutes after its expiry`);
    }
    if (attempt.status === 'paid' && order?.paid_attempt !== no) problems.push(`attempt ${no}: paid but its order is not paid by it`);
    if ((attempt.status === 'paid' || attempt.status === 'refund_required') && Number(attempt.cash_fen) > 0 && !attempt.transaction_id) {
      problems.push(`attempt ${no}: ${String(attempt.status)} without the gateway's transaction id`);
    }
  }

  const refunds = attempts
    .filter((a) => a.status === 'refund_required')
    .map((a) => ({
      outTradeNo: a.out_trade_no as string,
      orderId: a.order_id as number,
      userId: a.user_id as number,
      method: a.method as number,
      cashFen: a.cash_fen as number,
      transactionId: a.transaction_id as string | undefined,
      paidAt: a.paid_at as string | undefined,
    }));
  return { problems, refunds, counts: { users: accounts.length, orders: orders.size, attempts: attempts.length, ledgerEntries: ledger.length } };
}

async function scanAll(db: DynamoDBDocumentClient, table: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...((page.Items ?? []) as Item[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
