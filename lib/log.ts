import { Logger } from '@aws-lambda-powertools/logger';

/** A value a log line may carry: never an object, so a request, a config or a key cannot slip in. */
export type LogValue = string | number | boolean | undefined;
export type LogFields = Record<string, LogValue>;

/**
 * The Powertools logger every line goes through: one JSON object per line, with the service, the
 * request id, the function and cold start once a handler's middleware has bound the invocation
 * (`injectLambdaContext`, in lib/http/). The level comes from `POWERTOOLS_LOG_LEVEL` or `LOG_LEVEL`.
 */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'paynow',
  // Powertools reads these variables too, but only when written in upper case.
  logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL)?.toUpperCase() as never,
});

function scalars(fields: LogFields | undefined): LogFields {
  if (!fields) return {};
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value === undefined || ['string', 'number', 'boolean'].includes(typeof value)));
}

function write(level: 'info' | 'warn' | 'error', message: string, fields?: LogFields, error?: unknown): void {
  // Powertools formats an Error as name, location, message, stack and its `cause` chain (with codes such as ECONNRESET).
  const fault = error === undefined ? {} : { error: error instanceof Error ? error : new Error(String(error)) };
  logger[level]({ message, ...scalars(fields), ...fault });
}

/**
 * Named scalar fields only (snake_case, as the gateways and the API name them: `order_id`,
 * `out_trade_no`); a fault of ours also passes its error. Never personal data: no names, phones or
 * addresses.
 *
 * @example log.error('gateway call failed', { out_trade_no }, error)
 */
export const log = {
  info: (message: string, fields?: LogFields) => write('info', message, fields),
  warn: (message: string, fields?: LogFields, error?: unknown) => write('warn', message, fields, error),
  error: (message: string, fields?: LogFields, error?: unknown) => write('error', message, fields, error),
  /** Adds fields to every later line of this invocation (the handler middleware clears them after it). */
  bind: (fields: LogFields) => logger.appendKeys(scalars(fields)),
};
