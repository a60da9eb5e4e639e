/** Where the local stack listens. The same table name `serverless offline` (stage dev) uses. */
export const LOCAL_HOST = '127.0.0.1';
export const LOCAL_DYNAMODB_PORT = 8000;
export const LOCAL_DYNAMODB_ENDPOINT = `http://${LOCAL_HOST}:${LOCAL_DYNAMODB_PORT}`;
export const LOCAL_GATEWAY_PORT = 8020;
export const LOCAL_API_PORT = 3000;
export const LOCAL_LAMBDA_PORT = 3002;
export const LOCAL_TABLE_NAME = 'paynow-dev';
/** The demo receiver of the shop's events (the webhook URL of the local stack). */
export const LOCAL_EVENTS_PORT = 8030;
