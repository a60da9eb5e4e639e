import { LOCAL_HOST, LOCAL_LAMBDA_PORT } from './constants';

/** The local stack's Lambda endpoint (serverless offline's `lambdaPort`); PAYNOW_LAMBDA_ENDPOINT overrides it. */
export function localLambdaEndpoint(env: Record<string, string | undefined> = process.env): string {
  return env.PAYNOW_LAMBDA_ENDPOINT ?? `http://${LOCAL_HOST}:${LOCAL_LAMBDA_PORT}`;
}

/**
 * Invokes a function of the running local stack (stage dev) through its Lambda endpoint, as
 * `aws lambda invoke` does on AWS, and returns what the function returned.
 */
export async function invokeLocalFunction(fn: string, payload: unknown, endpoint = localLambdaEndpoint()): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${endpoint}/2015-03-31/functions/paynow-dev-${fn}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
  } catch (error) {
    throw new Error(`the local stack is not answering at ${endpoint} (is npm start running?): ${(error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`${fn} could not be invoked: HTTP ${response.status} ${text.slice(0, 200)}`);
  const answer = text ? JSON.parse(text) : undefined;
  // The function itself failed (threw, timed out): Lambda answers 200 with its error instead of a result.
  if (response.headers.get('x-amz-function-error') || (answer && typeof answer === 'object' && 'errorType' in answer)) {
    throw new Error(`${fn} failed: ${(answer as { errorMessage?: string })?.errorMessage ?? text.slice(0, 200)}`);
  }
  return answer;
}
