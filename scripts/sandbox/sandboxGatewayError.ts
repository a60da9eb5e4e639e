/**
 * A refusal from the sandbox itself (simulator API / `pay()` / `registerAlipayOrder()` / the other controls), with a stable code.
 *
 * @example
 * throw new SandboxGatewayError('TRADE_CLOSED', `trade ${outTradeNo} is closed`, 409);
 */
export class SandboxGatewayError extends Error {
  constructor(
    readonly code:
      | 'TRADE_NOT_FOUND'
      | 'TRADE_CLOSED'
      | 'TRADE_EXPIRED'
      | 'TRADE_NOT_PAID'
      | 'INVALID_REQUEST'
      | 'AMBIGUOUS_TRADE'
      | 'INVALID_ORDER_STRING'
      | 'INVALID_SIGNATURE'
      | 'ACQ.CONTEXT_INCONSISTENT'
      | 'ACQ.TRADE_HAS_SUCCESS'
      | 'ACQ.TRADE_HAS_CLOSE',
    message: string,
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = 'SandboxGatewayError';
  }
}
