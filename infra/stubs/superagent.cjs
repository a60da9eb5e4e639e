// Bundled in place of superagent (esbuild `alias` in serverless.yml). wechatpay-node-v3 loads
// superagent for its default HTTP layer, which lib/gateways/wechatPay.ts always replaces
// (`createHttp`): shipping it cost about 80 ms of every WeChat cold start. Anything that still
// reaches for it fails loudly instead of sending an unverified request.
function notBundled() {
  throw new Error('superagent is not bundled: WechatPayGateway sends every request through its own verified HTTP layer');
}
module.exports = new Proxy(notBundled, { get: (_target, property) => (property === '__esModule' ? false : notBundled) });
