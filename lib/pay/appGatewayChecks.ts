/**
 * However many status calls and repeat taps come (a buggy app, an attacker with one token), an open
 * attempt is checked at its gateway on the app's behalf at most once per this (`claimGatewayCheck`):
 * the merchant's rate limit at the gateways is not the app's to spend. In between, the table answers.
 */
export const APP_GATEWAY_CHECK_INTERVAL_MS = 30_000;
