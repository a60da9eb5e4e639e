/**
 * The closed set of failures a caller can see. Each has a stable machine `code` (the key) and the
 * Chinese `msg` the app shows. Add a code here, never inline a message elsewhere.
 */
export const ERRORS = {
  TOKEN_MISSING: '请先登录',
  TOKEN_INVALID: '登录已失效,请重新登录',
  TOKEN_EXPIRED: 'token过期',
  INVALID_BODY: '请求格式错误',
  INVALID_PARAM: '参数错误',
  ORDER_NOT_FOUND: '订单不存在',
  ADDRESS_NOT_FOUND: '地址不存在',
  ORDER_ALREADY_PAID: '订单已支付',
  ORDER_REFUNDING: '订单正在退款',
  ORDER_REFUNDED: '订单已退款',
  ORDER_CLOSED: '订单已关闭',
  ORDER_CANCELLED: '订单已取消',
  ORDER_BEING_PAID: '订单正在支付中,请稍后查看支付结果',
  ORDER_BUSY: '订单正在处理中,请稍后再试',
  FREIGHT_MODE_INVALID: '配送方式不正确',
  FREIGHT_OPTION_INVALID: '运费方式不存在',
  PAY_METHOD_NOT_ALLOWED: '积分足够支付,请使用积分支付',
  INTEGRAL_NOT_ENOUGH: '积分不足,请选择微信或支付宝支付',
  INTEGRAL_INVALID: '抵扣积分数量不正确',
  INTEGRAL_MISMATCH: '支付积分与订单应付积分不一致',
  PRICE_MISMATCH: '支付金额与订单应付金额不一致',
  GATEWAY_ERROR: '支付通道繁忙,请稍后再试',
  INTERNAL_ERROR: '系统繁忙,请稍后再试',
} as const;

export type ErrorCode = keyof typeof ERRORS;

/**
 * The base of every error paynow throws on purpose: named after what it means, keeping the error
 * that caused it (`cause`), which the logs print as a chain. Each class names itself on its
 * prototype, in a static block: class names do not survive minification, and a name set in the
 * constructor would come after the stack trace's first line was written.
 *
 * @example throw new GatewayError('wechat query failed', { cause: error })
 */
export class PaynowError extends Error {
  static {
    PaynowError.prototype.name = 'PaynowError';
  }
}

/**
 * A failure the caller caused or can act on: answered with the envelope, status 0.
 * `detail` refines the message ("应付12.00元") without changing the code.
 *
 * @example throw new PayError('PRICE_MISMATCH', '应付12.00元')
 * @example throw new PayError('GATEWAY_ERROR', undefined, { cause: gatewayError })
 */
export class PayError extends PaynowError {
  static {
    PayError.prototype.name = 'PayError';
  }

  readonly code: ErrorCode;

  constructor(code: ErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${ERRORS[code]}(${detail})` : ERRORS[code], options);
    this.code = code;
  }
}

/**
 * A payment cannot be decided yet: the order's other attempt may still be being created at its
 * gateway (its prepay in flight), so closing it now would not stop it. Nothing was written; the
 * notification is answered so that the gateway sends it again, and the sweeper asks meanwhile.
 */
export class AttemptInFlight extends PaynowError {
  static {
    AttemptInFlight.prototype.name = 'AttemptInFlight';
  }

  constructor(readonly outTradeNo: string) {
    super(`attempt ${outTradeNo} is still being created at its gateway`);
  }
}

/**
 * Why an operator's refund request (the refundOrder function) was refused, each with a stable code
 * and the Chinese message `npm run refund` prints.
 */
export const REFUND_ERRORS = {
  INVALID_REQUEST: '请求格式错误:需要 order_id(正整数)和 reason(1-80个字);repaid_outside 如有,1-200个字',
  ORDER_NOT_FOUND: '订单不存在',
  ATTEMPT_NOT_FOUND: '该订单没有这笔支付',
  ORDER_NOT_PAID: '订单未支付,无法退款',
  NOT_REFUNDABLE: '这笔支付不需要退款',
  REFUND_IN_PROGRESS: '退款正在处理中,请勿重复申请',
  REFUND_WINDOW_CLOSED: '已超过支付渠道的退款期限,无法原路退款',
  REFUND_FAILED: '支付渠道拒绝了退款',
  REFUND_HANDLED: '这笔支付的退款已由人工在支付渠道之外处理,不再原路退款;如已线下退款,请用 repaid_outside 记录',
  NO_CASH_PAID: '这笔支付没有现金部分,无需记录线下退款,请直接申请退款',
  ALREADY_REFUNDED: '这笔支付已经原路退款成功,不能再记录线下退款;如又线下退了一次,付款人已收到两次退款',
  INTERNAL_ERROR: '系统繁忙,请稍后再试',
} as const;

export type RefundErrorCode = keyof typeof REFUND_ERRORS;

/** An operator's refund request refused: nothing was refunded (what was recorded, the message says). */
export class RefundRefused extends PaynowError {
  static {
    RefundRefused.prototype.name = 'RefundRefused';
  }

  readonly code: RefundErrorCode;

  constructor(code: RefundErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${REFUND_ERRORS[code]}(${detail})` : REFUND_ERRORS[code], options);
    this.code = code;
  }
}

/**
 * Why a shop command (the shopCommand function) was refused, each with a stable code and a Chinese
 * message for the shop's logs and operators. A refused command changed nothing in paynow's table; one
 * refused ORDER_BUSY or GATEWAY_ERROR after a paying order's attempt was closed at its gateway leaves that
 * trade closed (the buyer's pay sheet can no longer pay): sent again, the command finishes the job.
 */
export const SHOP_ERRORS = {
  INVALID_COMMAND: '命令格式错误',
  ORDER_NOT_FOUND: '订单不存在',
  ORDER_OWNER_CHANGED: '订单的用户不能更改',
  ORDER_NOT_EDITABLE: '订单已支付、退款或关闭,不能再修改',
  ORDER_BEING_PAID: '订单正在支付中且支付渠道显示已付款,不能修改或关闭',
  ORDER_BUSY: '订单正在处理中,请稍后再试',
  POINTS_BUSY: '该用户的积分正在变动中,请稍后再试',
  ORDER_ALREADY_PAID: '订单已支付,不能关闭(请走退款)',
  INTEGRAL_NOT_ENOUGH: '可用积分不足,不能扣减',
  USER_NOT_FOUND: '用户积分账户不存在',
  ENTRY_ID_REUSED: '该 entry_id 已用于另一笔不同的积分变动',
  GATEWAY_ERROR: '支付通道繁忙,请稍后再试',
  INTERNAL_ERROR: '系统繁忙,请稍后再试',
} as const;

export type ShopErrorCode = keyof typeof SHOP_ERRORS;

/** A shop command refused: nothing changed. */
export class ShopRefusal extends PaynowError {
  static {
    ShopRefusal.prototype.name = 'ShopRefusal';
  }

  readonly code: ShopErrorCode;

  constructor(code: ShopErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${SHOP_ERRORS[code]}(${detail})` : SHOP_ERRORS[code], options);
    this.code = code;
  }
}
