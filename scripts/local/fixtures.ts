import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as v from 'valibot';
import { addressFields, orderFields } from '../../lib/shop/commands';
import { accountItem, addressItem, type Item, orderItem, sessionItem } from '../../lib/store/items';
import { ENTITY, hashToken } from '../../lib/store/keys';
import { scanAll } from '../../lib/store/scanAll';

// Numbers as the shop's commands take them (lib/shop/commands.ts): safe integers, so a rounded giant is refused.
const id = v.pipe(v.number(), v.safeInteger(), v.minValue(1));
const isoTime = v.pipe(
  v.string(),
  v.check((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time'),
);

/** Orders and addresses are checked as the shop's commands are (lib/shop/commands.ts); users and tokens are the seed's own. */
const fixtureSchema = v.object({
  users: v.optional(
    v.array(
      v.object({
        user_id: id,
        integral: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
        tokens: v.optional(v.array(v.object({ token: v.pipe(v.string(), v.nonEmpty()), expires_at: isoTime })), []),
      }),
    ),
    [],
  ),
  addresses: v.optional(v.array(v.strictObject(addressFields)), []),
  orders: v.optional(
    v.array(
      v.strictObject({
        ...orderFields,
        // Demo data only: an order paid or closed before the demo starts. "paid" imports it as paid outside
        // paynow (no attempt of ours; reconcile reports it as information). The shop's upsert-order never sets a status.
        status: v.optional(v.picklist(['unpaid', 'paid', 'closed', 'cancelled']), 'unpaid'),
      }),
    ),
    [],
  ),
});

/** The seed format of the local stack and the tests (README, "Seeding"): a development tool, not deployed. */
export type Fixture = v.InferInput<typeof fixtureSchema>;

/** A delivery address for seeding a test or bench user: the same sample person everywhere. */
export function sampleAddress(userId: number, addressId: number): NonNullable<Fixture['addresses']>[number] {
  return {
    address_id: addressId,
    user_id: userId,
    name: '张三',
    phone: '13800000000',
    province: '广东省',
    city: '深圳市',
    district: '南山区',
    detail: '科技园1号',
  };
}

/** Validates a fixture, naming the first bad path. */
export function parseFixture(input: unknown): v.InferOutput<typeof fixtureSchema> {
  const result = v.safeParse(fixtureSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    throw new Error(`bad fixture at ${issue.path?.map((p) => String(p.key)).join('.') ?? '(root)'}: ${issue.message}`);
  }
  return result.output;
}

/**
 * Writes a fixture. Re-seeding the same ids overwrites them: a user's points start again from
 * `integral` (nothing held or spent), and the user's payment history goes with them (attempts and
 * ledger entries removed, their orders unpaid again), so the data stays consistent. Tokens are stored as their SHA-256 only.
 * A development tool: it scans for the history it removes.
 */
export async function writeFixture(db: DynamoDBDocumentClient, table: string, input: unknown): Promise<void> {
  const fixture = parseFixture(input);
  await forgetHistory(db, table, new Set(fixture.users.map((u) => u.user_id)));
  const now = new Date().toISOString();
  const items: Item[] = [];
  for (const user of fixture.users) {
    items.push(accountItem(user.user_id, user.integral, now));
    for (const { token, expires_at } of user.tokens) items.push(sessionItem(hashToken(token), user.user_id, new Date(expires_at).toISOString()));
  }
  for (const a of fixture.addresses) {
    items.push(
      addressItem({
        addressId: a.address_id,
        userId: a.user_id,
        name: a.name,
        phone: a.phone,
        province: a.province,
        city: a.city,
        district: a.district,
        detail: a.detail,
      }),
    );
  }
  for (const o of fixture.orders) {
    const freightOptions = o.freight_json.map((f) => ({ key: f.key, name: f.name, feeFen: f.fee }));
    items.push(
      orderItem(
        {
          orderId: o.order_id,
          userId: o.user_id,
          goodsName: o.goods_name,
          goodsFen: o.goods_price,
          freeShipping: o.free_shipping,
          freightOptions,
          status: o.status,
          paidOutside: o.status === 'paid',
        },
        now,
      ),
    );
  }
  await Promise.all(items.map((Item) => db.send(new PutCommand({ TableName: table, Item }))));
}

/** A re-seeded user starts over: their attempts, refunds, payment conflicts and ledger go, and their other orders paid through paynow become unpaid again. */
async function forgetHistory(db: DynamoDBDocumentClient, table: string, users: Set<number>): Promise<void> {
  if (users.size === 0) return;
  const doomed: { pk: string; sk: string }[] = [];
  const reopened: { pk: string; sk: string }[] = [];
  const items = await scanAll(db, table, {
    ProjectionExpression: 'pk, sk, entity, user_id, #status, paid_outside',
    ExpressionAttributeNames: { '#status': 'status' },
  });
  for (const item of items) {
    if (!users.has(item.user_id as number)) continue;
    const key = { pk: item.pk as string, sk: item.sk as string };
    if (([ENTITY.attempt, ENTITY.ledger, ENTITY.refund, ENTITY.paymentConflict] as unknown[]).includes(item.entity)) doomed.push(key);
    // An order paid outside paynow owes nothing to the history forgotten here: it stays paid.
    if (item.entity === ENTITY.order && ['paying', 'paid', 'refunding', 'refunded'].includes(item.status as string) && !item.paid_outside) reopened.push(key);
  }
  await Promise.all([
    ...doomed.map((Key) => db.send(new DeleteCommand({ TableName: table, Key }))),
    ...reopened.map((Key) =>
      db.send(
        new UpdateCommand({
          TableName: table,
          Key,
          UpdateExpression: 'SET #status = :unpaid REMOVE open_attempt, paid_attempt, paid_at, refund',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':unpaid': 'unpaid' },
        }),
      ),
    ),
  ]);
}
