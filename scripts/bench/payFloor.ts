/**
 * The floor of a WeChat + points pay (issue 12): the work no implementation of POST /order/pay can
 * skip, done with the bare parts. The token's session read; one read of the order, the address and
 * the points (BatchGetItem, strongly consistent, as the pay's); one transactional write of the same
 * four items the pay writes (points held, order paying, attempt, ledger entry); WeChat's signed prepay
 * and the signed APP pay object. No validation, no quote, no logging, no envelope: what the pay costs
 * above this is its own overhead.
 */
import { BatchGetCommand, type DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { PaymentGateway } from '../../lib/gateways/paymentGateway';
import { attemptItem, fromSummary, ledgerItem } from '../../lib/store/items';
import { hashToken, keys } from '../../lib/store/keys';
import { LOCAL_TABLE_NAME as TABLE } from '../local/constants';

export interface FloorPay {
  token: string;
  userId: number;
  orderId: number;
  addressId: number;
  cashFen: number;
  points: number;
}

export async function payFloor(db: DynamoDBDocumentClient, wechat: PaymentGateway, pay: FloorPay, run: number): Promise<void> {
  await db.send(new GetCommand({ TableName: TABLE, Key: keys.session(hashToken(pay.token)), ConsistentRead: true }));
  const addressKey = keys.address(pay.userId, pay.addressId);
  const { Responses } = await db.send(
    new BatchGetCommand({
      RequestItems: { [TABLE]: { Keys: [keys.order(pay.orderId), addressKey, keys.account(pay.userId)], ConsistentRead: true } },
    }),
  );
  const address = Responses?.[TABLE]?.find((item) => item.pk === addressKey.pk && item.sk === addressKey.sk) ?? {};
  const now = new Date();
  const outTradeNo = `${pay.orderId}T${now.getTime()}${String(run % 10_000).padStart(4, '0')}`;
  const attempt = {
    outTradeNo,
    orderId: pay.orderId,
    userId: pay.userId,
    method: 4 as const,
    cashFen: pay.cashFen,
    points: pay.points,
    addressId: pay.addressId,
    address: {
      addressId: pay.addressId,
      userId: pay.userId,
      name: String(address.name),
      phone: String(address.phone),
      province: String(address.province),
      city: String(address.city),
      district: String(address.district),
      detail: String(address.detail),
    },
    subject: 'g',
    status: 'open' as const,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + 30 * 60_000).toISOString(),
  };
  await db.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: TABLE,
            Key: keys.account(pay.userId),
            ConditionExpression: 'integral_available >= :points',
            UpdateExpression: 'ADD integral_available :take, integral_held :points',
            ExpressionAttributeValues: { ':points': pay.points, ':take': -pay.points },
          },
        },
        {
          Update: {
            TableName: TABLE,
            Key: keys.order(pay.orderId),
            ConditionExpression: '#status = :unpaid',
            UpdateExpression: 'SET #status = :paying, open_attempt = :summary, updated_at = :now',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':unpaid': 'unpaid', ':paying': 'paying', ':summary': fromSummary(attempt), ':now': attempt.createdAt },
          },
        },
        { Put: { TableName: TABLE, Item: attemptItem(attempt), ConditionExpression: 'attribute_not_exists(pk)' } },
        { Put: { TableName: TABLE, Item: ledgerItem({ ...attempt, kind: 'hold' }, attempt.createdAt), ConditionExpression: 'attribute_not_exists(pk)' } },
      ],
    }),
  );
  await wechat.createPayParam({ outTradeNo, amountFen: pay.cashFen, subject: attempt.subject, expiresAt: new Date(attempt.expiresAt) });
}
