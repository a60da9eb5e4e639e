import { Logger } from '@aws-lambda-powertools/logger';
import { sourceMappedStack } from './sourceMappedStack';

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

/** A logged error: name, message, stack (mapped to the TypeScript source), a scalar `code` (ECONNRESET), and its cause chain. Nothing else. */
interface LoggedError {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
  cause?: LoggedError;
}

/**
 * Only the fields above are kept: a library's error may carry the request it sent or the answer it
 * got (alipay-sdk's carries the buyer's account) in properties that a generic formatter would copy.
 */
export function describeError(error: unknown, depth = 0): LoggedError {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    stack: error.stack === undefined ? undefined : sourceMappedStack(error.stack),
    ...(error.cause !== undefined && depth < 5 ? { cause: describeError(error.cause, depth + 1) } : {}),
  };
}

function write(level: 'info' | 'warn' | 'error', message: string, fields?: LogFields, error?: unknown): void {
  logger[level]({ message, ...scalars(fields), ...(error === undefined ? {} : { error: describeError(error) }) });
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
