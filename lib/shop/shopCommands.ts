import { ShopRefusal } from '../domain/errors';
import { type Channel, type Order, samePrice } from '../domain/model';
import { type Clock, systemClock } from '../domain/time';
import { GatewayError, type PaymentGateway } from '../gateways/paymentGateway';
import { log } from '../log';
import { closeUnpaidTrade } from '../pay/closeTrade';
import { retryLostRaces } from '../pay/retryLostRaces';
import { type OrderFields, type ShopStore, WriteConflict } from '../store/payStore';
import type { PointsCommand, ShopCommand, UpsertAddress, UpsertOrder } from './commands';

export interface ShopDeps {
  store: ShopStore;
  gateways: Record<Channel, PaymentGateway>;
  now?: Clock;
}

/** What a command did: `changed` false when it was already so (a replay). */
export type ShopAnswer = { ok: true; changed: boolean } & Record<string, unknown>;

/**
 * Carries out one shop command. Every command is idempotent (sending it again changes nothing and says
 * so) and every write is conditional on the state it was decided from, re-deciding after a lost race.
 *
 * @throws ShopRefusal for everything the shop should read
 */
export async function runShopCommand(deps: ShopDeps, command: ShopCommand): Promise<ShopAnswer> {
  try {
    return await retryLostRaces(() => runOnce(deps, command));
  } catch (error) {
    if (error instanceof WriteConflict) {
      const busy = command.command === 'credit-points' || command.command === 'debit-points' ? 'POINTS_BUSY' : 'ORDER_BUSY';
      throw new ShopRefusal(busy, undefined, { cause: error });
    }
    if (error instanceof GatewayError) throw new ShopRefusal('GATEWAY_ERROR', undefined, { cause: error });
    throw error;
  }
}

async function runOnce(deps: ShopDeps, command: ShopCommand): Promise<ShopAnswer> {
  const now = (deps.now ?? systemClock)();
  switch (command.command) {
    case 'upsert-order':
      return upsertOrder(deps, command, now);
    case 'close-order':
      return closeOrder(deps, command.order_id, now, command.reason);
    case 'credit-points':
    case 'debit-points':
      return movePoints(deps, command, now);
    case 'put-session': {
      const session = await deps.store.findSession(command.token);
      const same = session?.userId === command.user_id && session.expiresAt === command.expires_at;
      if (!same) await deps.store.putSession(command.token, command.user_id, command.expires_at);
      return { ok: true, changed: !same, user_id: command.user_id, expires_at: command.expires_at };
    }
    case 'revoke-session':
      return { ok: true, changed: await deps.store.deleteSession(command.token) };
    case 'upsert-address': {
      const wanted = address(command);
      const same = JSON.stringify(await deps.store.getAddress(wanted.userId, wanted.addressId)) === JSON.stringify(wanted);
      if (!same) await deps.store.putAddress(wanted);
      return { ok: true, changed: !same, address_id: command.address_id };
    }
  }
}

/**
 * Creates an unpaid order or updates an unpaid one. A paying order keeps its open attempt when only names
 * change (the goods', a freight option's); a new price closes that attempt at its gateway and releases
 * its points first (the order is unpaid again at the new price), or is refused when the gateway says it
 * is paid. Paid, refunding, refunded, closed and cancelled orders are never reopened or repriced.
 */
async function upsertOrder(deps: ShopDeps, command: UpsertOrder, now: Date): Promise<ShopAnswer> {
  const fields = orderFields(command);
  const order = await deps.store.getOrder(fields.orderId);
  const at = now.toISOString();
  if (!order) {
    await deps.store.putUnpaidOrder(fields, 'new', at);
    return { ok: true, changed: true, order_id: fields.orderId, order_status: 'unpaid', created: true };
  }
  if (order.userId !== fields.userId) throw new ShopRefusal('ORDER_OWNER_CHANGED', `订单属于用户${order.userId}`);
  if (sameFields(order, fields)) return { ok: true, changed: false, order_id: order.orderId, order_status: order.status };

  switch (order.status) {
    case 'unpaid':
      await deps.store.putUnpaidOrder(fields, 'unpaid', at);
      return { ok: true, changed: true, order_id: order.orderId, order_status: 'unpaid' };
    case 'paying': {
      const open = order.openAttempt;
      if (!open) throw new Error(`order ${order.orderId} is paying without its attempt`);
      if (samePrice(order, fields)) {
        await deps.store.renamePayingOrder(fields, open.outTradeNo, at);
        return { ok: true, changed: true, order_id: order.orderId, order_status: 'paying' };
      }
      await releaseOpenAttempt(deps, order, open.outTradeNo, { repriced: fields }, now);
      return { ok: true, changed: true, order_id: order.orderId, order_status: 'unpaid', closed_attempt: open.outTradeNo };
    }
    default:
      throw new ShopRefusal('ORDER_NOT_EDITABLE', `订单状态 ${order.status}`);
  }
}

/**
 * The shop cancels an order that is not paid: an open attempt is closed at its gateway and its points
 * released in the same write that closes the order. Money that still arrives for it is a refund case.
 */
async function closeOrder(deps: ShopDeps, orderId: number, now: Date, reason?: string): Promise<ShopAnswer> {
  const order = await deps.store.getOrder(orderId);
  if (!order) throw new ShopRefusal('ORDER_NOT_FOUND');
  switch (order.status) {
    case 'closed':
    case 'cancelled':
      return { ok: true, changed: false, order_id: orderId, order_status: order.status };
    case 'unpaid':
      // Stamped after the read, so that `order.closed` sorts after a change it saw (a refund case of a released attempt).
      await deps.store.closeUnpaidOrder(order, (deps.now ?? systemClock)().toISOString(), reason);
      return { ok: true, changed: true, order_id: orderId, order_status: 'closed' };
    case 'paying': {
      const open = order.openAttempt;
      if (!open) throw new Error(`order ${orderId} is paying without its attempt`);
      await releaseOpenAttempt(deps, order, open.outTradeNo, { closed: { reason } }, now);
      return { ok: true, changed: true, order_id: orderId, order_status: 'closed', closed_attempt: open.outTradeNo };
    }
    default:
      throw new ShopRefusal('ORDER_ALREADY_PAID', `订单状态 ${order.status}`);
  }
}

/** The open attempt must be provably unpaid and closed at its gateway before its points go back. */
async function releaseOpenAttempt(
  deps: ShopDeps,
  order: Order,
  outTradeNo: string,
  then: { repriced: OrderFields } | { closed: { reason?: string } },
  now: Date,
): Promise<void> {
  const attempt = await deps.store.getAttempt(outTradeNo);
  if (!attempt) throw new Error(`attempt ${outTradeNo} of order ${order.orderId} is missing`);
  const closed = await closeUnpaidTrade(deps.gateways, attempt, now);
  if (closed === 'paid') throw new ShopRefusal('ORDER_BEING_PAID', outTradeNo);
  if (closed === 'in_flight') throw new ShopRefusal('ORDER_BUSY', outTradeNo);
  // Stamped after the gateway calls, so that `order.closed` sorts after an event written while they were on their way.
  await deps.store.releaseForShop(attempt, then, (deps.now ?? systemClock)().toISOString());
  log.info('open attempt closed by the shop', { order_id: order.orderId, out_trade_no: outTradeNo, repriced: 'repriced' in then });
}

/**
 * Adds points to or takes them from available, once per entry id: a replay of the same movement answers
 * `changed` false; the same id with another movement is refused. A debit never makes available negative.
 */
async function movePoints(deps: ShopDeps, command: PointsCommand, now: Date): Promise<ShopAnswer> {
  const move = {
    userId: command.user_id,
    entryId: command.entry_id,
    kind: command.command === 'credit-points' ? ('credit' as const) : ('debit' as const),
    points: command.points,
    reason: command.reason,
  };
  const done = (changed: boolean) => ({ ok: true as const, changed, user_id: move.userId, entry_id: move.entryId });
  const madeAlready = async () => {
    const earlier = await deps.store.getShopPointsMove(move.userId, move.entryId);
    if (earlier && (earlier.kind !== move.kind || earlier.points !== move.points))
      throw new ShopRefusal('ENTRY_ID_REUSED', `${earlier.kind} ${earlier.points}`);
    return earlier !== undefined;
  };
  if (await madeAlready()) return done(false);
  try {
    await deps.store.moveShopPoints(move, now.toISOString());
  } catch (error) {
    if (!(error instanceof WriteConflict) || error.part !== 'points') throw error;
    // The same debit sent again while the first was being written: it took the points the account no
    // longer has, so the account's condition fails first. That is this debit made, not refused.
    if (await madeAlready()) return done(false);
    const account = await deps.store.getAccount(move.userId);
    if (!account) throw new ShopRefusal('USER_NOT_FOUND', `user ${move.userId}`);
    throw new ShopRefusal('INTEGRAL_NOT_ENOUGH', `可用${account.available}积分`);
  }
  return done(true);
}

function orderFields(c: UpsertOrder): OrderFields {
  return {
    orderId: c.order_id,
    userId: c.user_id,
    goodsName: c.goods_name,
    goodsFen: c.goods_price,
    freeShipping: c.free_shipping,
    freightOptions: c.freight_json.map((f) => ({ key: f.key, name: f.name, feeFen: f.fee })),
  };
}

function address(c: UpsertAddress) {
  return {
    addressId: c.address_id,
    userId: c.user_id,
    name: c.name,
    phone: c.phone,
    province: c.province,
    city: c.city,
    district: c.district,
    detail: c.detail,
  };
}

/** Nothing to change: the same price (`samePrice`: goods, shipping, each freight option's key and fee) and the same names. */
function sameFields(order: Order, fields: OrderFields): boolean {
  return samePrice(order, fields) && order.goodsName === fields.goodsName && order.freightOptions.every((o, i) => o.name === fields.freightOptions[i]?.name);
}
