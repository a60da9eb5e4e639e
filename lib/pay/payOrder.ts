import { randomInt } from 'node:crypto';
import { PayError } from '../domain/errors';
import { type Address, type Attempt, type AttemptSummary, type Channel, channelOf, type Order, type OrderPrice, PayMethod, samePrice } from '../domain/model';
import type { PayRequest } from '../domain/quote';
import { type Quote, quoteOrder } from '../domain/quote';
import { type Clock, systemClock } from '../domain/time';
import { GatewayError, type PaymentGateway, type PayParam, TradeAlreadyPaid, TradeClosed } from '../gateways/paymentGateway';
import { log } from '../log';
import { type PayContext, type PayContextRead, type PayStore, WriteConflict } from '../store/payStore';
import { APP_GATEWAY_CHECK_INTERVAL_MS } from './appGatewayChecks';
import { closeUnpaidTrade } from './closeTrade';
import { PAY_RACE_RETRIES, retryLostRaces } from './retryLostRaces';

export interface PayOrderDeps {
  store: PayStore;
  gateways: Record<Channel, PaymentGateway>;
  fenPerPoint: number;
  payTimeoutMinutes: number;
  now?: Clock;
  /** The time this request has left (the function's, minus the answer's margin); none: unbounded (tests, scripts). */
  deadline?: { remainingMs(): number };
}

/** What one gateway step may take: the gateway's own timeout (5 s) and the write after it. */
export const GATEWAY_STEP_MS = 6_000;

/** What the app asked for, parsed (lib/http/payRequest.ts): money in fen. */
export interface PayOrderInput extends PayRequest {
  orderId: number;
  addressId: number;
}

export type PayOrderResult = { outcome: 'paid'; outTradeNo: string } | { outcome: 'pay_param'; outTradeNo: string; payParam: PayParam };

/** An open attempt this close to its expiry is replaced rather than handed out again. */
const REUSE_MARGIN_MS = 2 * 60 * 1000;

/**
 * "Pay this order now": checks the request against the server's own quote, asks the gateway for the
 * pay_param, then in ONE conditional write opens an attempt that holds the points (or, for points
 * only, pays the order). A repeat tap with the same choice gets the same attempt again; a different
 * choice supersedes it.
 *
 * @throws PayError for everything the app should show the user
 */
export async function payOrder(deps: PayOrderDeps, userId: number, input: PayOrderInput): Promise<PayOrderResult> {
  log.bind({ order_id: input.orderId });
  const prepaid: Prepaid = {};
  try {
    return await retryLostRaces(() => payOrderOnce(deps, userId, input, prepaid), PAY_RACE_RETRIES);
  } catch (error) {
    if (error instanceof WriteConflict) throw new PayError('ORDER_BUSY', undefined, { cause: error });
    throw error;
  }
}

/** The attempt this request has asked the gateway for, kept across its lost races: a retry at the same price writes it, not another. */
interface Prepaid {
  latest?: { attempt: Attempt; payParam: PayParam; price: OrderPrice };
}

async function payOrderOnce(deps: PayOrderDeps, userId: number, input: PayOrderInput, prepaid: Prepaid): Promise<PayOrderResult> {
  const { order, address, open, quote } = await quoteRequest(deps, userId, input);
  if (open) log.bind({ out_trade_no: open.outTradeNo });
  const now = (deps.now ?? systemClock)();

  if (open && isSameChoice(open, quote, input.addressId) && Date.parse(open.expiresAt) - now.getTime() > REUSE_MARGIN_MS) {
    ensureTimeFor(deps, 1);
    const again = await payAgain(deps, { ...open, orderId: order.orderId }, now);
    if (again) return again;
  }
  // No step starts that cannot finish: closing the open attempt (a query and a close) and the new prepay.
  ensureTimeFor(deps, open ? 3 : 1);
  if (open) {
    await closeAtGateway(deps, open, now);
    // A closed prepay must not be signed again by a tap that comes before the new attempt is written.
    if (open.prepayId) await deps.store.rememberPrepayId({ orderId: order.orderId, outTradeNo: open.outTradeNo }, undefined);
  }
  ensureTimeFor(deps, 1);

  // Stamped now, not when the tap began: a slow close above must not age it, or a tap a few seconds later
  // would take its prepay, still on its way to WeChat, for lost (closeUnpaidTrade's 'in_flight').
  const attempt = newAttempt(order, quote, address, (deps.now ?? systemClock)(), deps.payTimeoutMinutes);
  if (attempt.status === 'paid') {
    await openAttempt(deps, attempt, open, order);
    return { outcome: 'paid', outTradeNo: attempt.outTradeNo };
  }
  // The pay_param before the write, so that the write keeps WeChat's prepay id (a repeat tap signs it
  // again, asking WeChat at most once per interval) and nothing is written for a pay the gateway refused.
  // A tap that then loses the write to another tap leaves a WeChat order nobody holds the prepay id of: it
  // cannot be paid, and expires. A lost race retried at the same price writes the attempt already asked
  // for: this request's input and the same price make the same quote (or a refusal above).
  let asked = prepaid.latest;
  if (!asked || !samePrice(asked.price, order)) {
    let payParam: PayParam;
    try {
      payParam = await requestPayParam(deps, attempt);
    } catch (error) {
      if (open) await releaseClosedForSwitch(deps, order, open);
      throw error;
    }
    asked = { attempt: typeof payParam === 'string' ? attempt : { ...attempt, prepayId: payParam.prepayid }, payParam, price: order };
    prepaid.latest = asked;
  }
  await openAttempt(deps, asked.attempt, open, order);
  return { outcome: 'pay_param', outTradeNo: asked.attempt.outTradeNo, payParam: asked.payParam };
}

/** The order as this request found it, its open attempt, and the server's quote of what the app asked for. */
interface QuotedRequest {
  order: Order;
  address: Address;
  open?: AttemptSummary;
  quote: Quote;
}

/**
 * Reads the order, address and points (each as last written, in one request) and quotes the request.
 * A refusal writes nothing, so nothing would check it later: it is decided again from one instant's
 * state, as items read one by one can fall either side of a concurrent pay (its points held, its order
 * not yet paying with it). An accepted quote needs no second read: a new attempt's one write checks the
 * order, its price and the points as they are then, and a repeat tap acts only on the attempt the
 * order item names (docs/capacity.md, "Which reads are plain reads").
 */
async function quoteRequest(deps: PayOrderDeps, userId: number, input: PayOrderInput): Promise<QuotedRequest> {
  const read = (how: PayContextRead) => deps.store.loadPayContext(userId, input.orderId, input.addressId, how);
  try {
    return quoteContext(await read('latest'), userId, input, deps.fenPerPoint);
  } catch (error) {
    if (!(error instanceof PayError)) throw error;
    return quoteContext(await read('snapshot'), userId, input, deps.fenPerPoint);
  }
}

function quoteContext({ order, address, account }: PayContext, userId: number, input: PayOrderInput, fenPerPoint: number): QuotedRequest {
  // Another user's order is reported exactly like a missing one.
  if (!order || order.userId !== userId) throw new PayError('ORDER_NOT_FOUND');
  if (!address) throw new PayError('ADDRESS_NOT_FOUND');
  const open = order.status === 'paying' ? order.openAttempt : undefined;
  const availablePoints = (account?.available ?? 0) + (open?.points ?? 0);
  return { order, address, open, quote: quoteOrder(order, input, availablePoints, fenPerPoint) };
}

/** The ONE conditional write: the attempt opened (or, points only, the order paid), the points held, the previous attempt superseded. */
async function openAttempt(deps: PayOrderDeps, attempt: Attempt, previous: AttemptSummary | undefined, order: Order): Promise<void> {
  // Stamped when sent: an attempt kept from a lost race must not date the previous one's release before its creation.
  await deps.store.commitAttempt({ attempt, previous, quoted: order, now: (deps.now ?? systemClock)().toISOString() });
  log.bind({ out_trade_no: attempt.outTradeNo });
  log.info('attempt opened', { order_id: order.orderId, method: attempt.method, superseded: previous?.outTradeNo });
}

/**
 * A switch closed the open attempt at its gateway, then the new pay could not start: the old attempt's
 * points and the order go back now. Superseded, as by the attempt that could not start: an Alipay order
 * string never opened has no trade to close and can still be paid, and that money pays the order.
 * Should the release fail, the order stays paying with the closed attempt until the user's next tap
 * replaces it or the sweeper's next query of it finds it closed and releases it.
 */
async function releaseClosedForSwitch(deps: PayOrderDeps, order: Order, open: AttemptSummary): Promise<void> {
  try {
    const closed = await deps.store.getAttempt(open.outTradeNo);
    const released = closed && (await deps.store.releaseAttempt(closed, 'superseded', (deps.now ?? systemClock)().toISOString()));
    if (!released) log.warn('closed attempt was no longer open', { order_id: order.orderId, out_trade_no: open.outTradeNo });
  } catch (releaseError) {
    log.error('releasing a closed attempt failed', { out_trade_no: open.outTradeNo }, releaseError);
  }
}

/**
 * The repeat tap: a fresh pay_param for the attempt already open, or undefined when the gateway
 * has closed that attempt meanwhile (then a new one replaces it).
 */
async function payAgain(deps: PayOrderDeps, open: AttemptSummary & { orderId: number }, now: Date): Promise<PayOrderResult | undefined> {
  try {
    // An Alipay order string is signed locally whatever state the trade is in: ask Alipay first, at
    // most once per interval (a trade paid meanwhile refuses a second payment itself).
    if (channelOf(open.method) === 'alipay' && (await deps.store.claimGatewayCheck(open.outTradeNo, now, APP_GATEWAY_CHECK_INTERVAL_MS))) {
      const trade = await deps.gateways.alipay.queryTrade(open.outTradeNo);
      if (trade.state === 'paid') throw new TradeAlreadyPaid(open.outTradeNo);
      if (trade.state === 'closed') return undefined;
    }
    // WeChat's prepay is valid for 2 hours, the attempt far less: within the interval since WeChat was
    // last asked, it is signed again here. Once per interval WeChat is asked, which also finds a trade
    // closed meanwhile (a crash between closing it and recording that) and replaces the attempt.
    const wechat = deps.gateways.wechat;
    if (channelOf(open.method) === 'wechat' && !(await deps.store.claimGatewayCheck(open.outTradeNo, now, APP_GATEWAY_CHECK_INTERVAL_MS))) {
      if (open.prepayId && wechat.resumePayParam)
        return { outcome: 'pay_param', outTradeNo: open.outTradeNo, payParam: await wechat.resumePayParam(open.prepayId) };
      // Asked within the interval and nothing to sign again (an attempt from before prepay ids were kept).
      throw new PayError('ORDER_BUSY');
    }
    const payParam = await requestPayParam(deps, open);
    await rememberPrepay(deps, open, payParam);
    return { outcome: 'pay_param', outTradeNo: open.outTradeNo, payParam };
  } catch (error) {
    if (error instanceof TradeClosed) return undefined;
    throw translateGatewayError(error, open);
  }
}

/** Best effort: without it a repeat tap asks WeChat again, as before. */
async function rememberPrepay(deps: PayOrderDeps, attempt: AttemptSummary & { orderId: number }, payParam: PayParam): Promise<void> {
  if (typeof payParam === 'string') return;
  try {
    await deps.store.rememberPrepayId({ orderId: attempt.orderId, outTradeNo: attempt.outTradeNo }, payParam.prepayid);
  } catch (error) {
    log.warn('prepay id not kept', { out_trade_no: attempt.outTradeNo }, error);
  }
}

/**
 * Refuses, before it starts, work the request has no time left to finish: the app gets ORDER_BUSY
 * (订单正在处理中,请稍后再试) while that is still true, and its next tap finds the same state and goes on.
 */
function ensureTimeFor(deps: PayOrderDeps, gatewaySteps: number): void {
  const left = deps.deadline?.remainingMs();
  if (left === undefined || left >= gatewaySteps * GATEWAY_STEP_MS) return;
  log.warn('not enough time left for the next steps', { remaining_ms: Math.round(left), gateway_steps: gatewaySteps });
  throw new PayError('ORDER_BUSY');
}

/** The open attempt is what the buyer asks for again: method, amounts, address and freight choice (an attempt of before freight choices were recorded never is). */
function isSameChoice(open: AttemptSummary, quote: Quote, addressId: number): boolean {
  return (
    open.method === quote.method &&
    open.cashFen === quote.cashFen &&
    open.points === quote.points &&
    open.addressId === addressId &&
    open.freightKey === quote.freightKey
  );
}

function gatewayFor(deps: PayOrderDeps, method: PayMethod): PaymentGateway {
  const channel = channelOf(method);
  if (!channel) throw new Error(`method ${method} has no gateway`);
  return deps.gateways[channel];
}

async function requestPayParam(deps: PayOrderDeps, attempt: AttemptSummary): Promise<PayParam> {
  try {
    return await gatewayFor(deps, attempt.method).createPayParam({
      outTradeNo: attempt.outTradeNo,
      amountFen: attempt.cashFen,
      subject: attempt.subject,
      expiresAt: new Date(attempt.expiresAt),
    });
  } catch (error) {
    throw translateGatewayError(error, attempt);
  }
}

/** The old attempt must be provably unpaid and closed before its points may go to a new one. */
async function closeAtGateway(deps: PayOrderDeps, open: AttemptSummary, now: Date): Promise<void> {
  let closed: Awaited<ReturnType<typeof closeUnpaidTrade>>;
  try {
    closed = await closeUnpaidTrade(deps.gateways, open, now);
  } catch (error) {
    throw translateGatewayError(error, open);
  }
  if (closed === 'paid') throw new PayError('ORDER_BEING_PAID');
  if (closed === 'in_flight') throw new PayError('ORDER_BUSY');
}

function translateGatewayError(error: unknown, attempt: AttemptSummary): unknown {
  if (error instanceof TradeAlreadyPaid) return new PayError('ORDER_BEING_PAID', undefined, { cause: error });
  if (error instanceof GatewayError) {
    log.warn('gateway error', { out_trade_no: attempt.outTradeNo, method: attempt.method }, error);
    return new PayError('GATEWAY_ERROR', undefined, { cause: error });
  }
  return error;
}

function newAttempt(order: Order, quote: Quote, address: Attempt['address'], now: Date, timeoutMinutes: number): Attempt {
  const paysNow = quote.method === PayMethod.POINTS;
  return {
    outTradeNo: newOutTradeNo(order.orderId, now),
    orderId: order.orderId,
    userId: order.userId,
    method: quote.method,
    cashFen: quote.cashFen,
    points: quote.points,
    addressId: address.addressId,
    freightKey: quote.freightKey,
    freightFen: quote.freightFen,
    address,
    subject: order.goodsName,
    quotedPrice: { goodsFen: order.goodsFen, freeShipping: order.freeShipping, freightOptions: order.freightOptions },
    status: paysNow ? 'paid' : 'open',
    createdAt: now.toISOString(),
    // Whole seconds: the gateways take the expiry to the second, and ours must be the same instant.
    expiresAt: new Date(Math.floor(now.getTime() / 1000) * 1000 + timeoutMinutes * 60_000).toISOString(),
    paidAt: paysNow ? now.toISOString() : undefined,
  };
}

/** Unique per attempt, at most 32 characters of [0-9T] as both gateways accept: `<order>T<ms><4 random digits>`. */
function newOutTradeNo(orderId: number, now: Date): string {
  return `${orderId}T${now.getTime()}${String(randomInt(10_000)).padStart(4, '0')}`;
}
