import { request as httpsRequest } from 'node:https';

export type RequestFunction = typeof httpsRequest;

let plainRequest: Promise<RequestFunction> | undefined;

/**
 * The `request` of node:https for an https: URL (every gateway and webhook on AWS), or of node:http,
 * loaded on first use, for an http: one (the local sandbox, a test's endpoint). node:http is never
 * imported up front: on Node 24 importing it as an ES module reads its WebSocket exports, which loads
 * all of undici, 17 to 24 ms measured in a payOrder process, on the first WeChat call of every container.
 */
export function requestFunctionFor(url: URL): Promise<RequestFunction> {
  if (url.protocol === 'https:') return Promise.resolve(httpsRequest);
  plainRequest ??= import('node:http').then((http) => http.request);
  return plainRequest;
}
