/** infra/deployGuards.js: what a deploy refuses before it starts. */
it('a deploy is refused while the shell still points the functions at the local database (infra/deployGuards.js)', () => {
  const { refuseLocalEndpoint } = require('../../infra/deployGuards.js') as { refuseLocalEndpoint: (environment: Record<string, string>) => void };
  expect(() => refuseLocalEndpoint({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', TABLE_NAME: 'paynow-prod' })).toThrow(
    'DYNAMODB_ENDPOINT is set in this shell (the local database): unset it, then deploy',
  );
  expect(() => refuseLocalEndpoint({ DYNAMODB_ENDPOINT: '', TABLE_NAME: 'paynow-prod' })).not.toThrow();
});
