import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

/** An API Gateway HTTP API (payload 2.0) event, as the deployed function receives it (tests, the bench). */
export function httpEvent(options: {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  base64?: boolean;
  query?: Record<string, string>;
}): APIGatewayProxyEventV2 {
  const body = options.body === undefined ? undefined : options.base64 ? Buffer.from(options.body).toString('base64') : options.body;
  return {
    version: '2.0',
    routeKey: `${options.method ?? 'POST'} ${options.path}`,
    rawPath: options.path,
    rawQueryString: new URLSearchParams(options.query ?? {}).toString(),
    queryStringParameters: options.query,
    headers: Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: options.method ?? 'POST', path: options.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      requestId: 'test',
      routeKey: `${options.method ?? 'POST'} ${options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: Boolean(options.base64),
  };
}

// 28 s: as much as the deployed payOrder has (serverless.yml), the longest of the HTTP functions.
export const lambdaContext = { awsRequestId: 'test-request', functionName: 'test', getRemainingTimeInMillis: () => 28_000 } as unknown as Context;
