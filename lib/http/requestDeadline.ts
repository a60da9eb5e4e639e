import type { Context } from 'aws-lambda';

/** Kept back from the function's own time for the answer to reach API Gateway. */
const ANSWER_MARGIN_MS = 1_000;

/** The time a request has left, from the Lambda context; none outside Lambda's (a plain object in a test). */
export function requestDeadline(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined): { remainingMs(): number } | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  return { remainingMs: () => context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS };
}
