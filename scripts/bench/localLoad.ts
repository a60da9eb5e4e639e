/**
 * `npm run bench -- load`: the local stack under concurrent requests, as a developer load-tests it.
 * For each serverless offline mode (worker threads, the default; in-process), 50 pays and 50 status
 * calls at once over HTTP, then 10 s of 50 requests kept in flight: how many answers are the envelope
 * (the functions answered) and how many are serverless offline's own (a Lambda timeout), and the time.
 */
import type { LocalDynamo } from '../local/dynalite';
import type { Fixture } from '../local/fixtures';
import { type Offline, startOffline } from '../local/offline';

const CONCURRENT = 50;
const SUSTAINED_MS = 10_000;

export interface LoadStack {
  dynamo: LocalDynamo;
  env: Record<string, string>;
  seed(fixture: Fixture): Promise<void>;
}

interface Tally {
  envelope: number;
  other: number;
  samples: string[];
}

/** Users 1..n, each with a token, an address and one unpaid order of 88.00 (free shipping). */
function users(base: number, n: number): Fixture {
  const ids = Array.from({ length: n }, (_, i) => base + i);
  return {
    users: ids.map((id) => ({ user_id: id, integral: 0, tokens: [{ token: `load-${id}`, expires_at: '2099-01-01T00:00:00+08:00' }] })),
    addresses: ids.map((id) => ({
      address_id: id,
      user_id: id,
      name: '测试',
      phone: '13800000000',
      province: '广东省',
      city: '深圳市',
      district: '南山区',
      detail: '1号',
    })),
    orders: ids.map((id) => ({
      order_id: id,
      user_id: id,
      goods_name: '保温杯',
      goods_price: '88.00',
      free_shipping: true,
      status: 'unpaid' as const,
      freight_json: [],
    })),
  };
}

async function call(url: string, init: RequestInit, tally: Tally): Promise<void> {
  try {
    const reply = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
    const text = await reply.text();
    let body: { status?: unknown } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body && (body.status === 200 || body.status === 0)) tally.envelope++;
    else {
      tally.other++;
      if (tally.samples.length < 3) tally.samples.push(`HTTP ${reply.status} ${text.slice(0, 80)}`);
    }
  } catch (error) {
    tally.other++;
    if (tally.samples.length < 3) tally.samples.push((error as Error).name);
  }
}

function pay(api: string, id: number, tally: Tally) {
  const body = { order_id: id, pay_method: 1, pay_price: '88.00', pay_integral: 0, address_id: id, freight_mode: 1 };
  return call(`${api}/order/pay`, { method: 'POST', headers: { 'content-type': 'application/json', token: `load-${id}` }, body: JSON.stringify(body) }, tally);
}

function status(api: string, id: number, tally: Tally) {
  return call(`${api}/order/pay/status?order_id=${id}`, { headers: { token: `load-${id}` } }, tally);
}

export async function benchLocalLoad(stack: LoadStack, ports: { http: number; lambda: number }): Promise<void> {
  console.log(
    `\nlocal stack under load: ${CONCURRENT} pays and ${CONCURRENT} status calls at once, then ${SUSTAINED_MS / 1000} s with ${CONCURRENT} in flight`,
  );
  let base = 900_000;
  for (const mode of ['worker threads (default)', 'in-process (--useInProcess)'] as const) {
    const offline: Offline = await startOffline({
      env: { ...stack.env, ESBUILD_WORK_FOLDER: '.esbuild-bench-load' },
      httpPort: ports.http,
      lambdaPort: ports.lambda,
      quiet: true,
      inProcess: mode.startsWith('in-process'),
    });
    try {
      const api = offline.url;
      await stack.seed(users(base, CONCURRENT * 40));
      const burst: Tally = { envelope: 0, other: 0, samples: [] };
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => [pay(api, base + i, burst), status(api, base + i, burst)]).flat());
      const burstMs = performance.now() - started;

      const sustained: Tally = { envelope: 0, other: 0, samples: [] };
      let next = base + CONCURRENT;
      const end = performance.now() + SUSTAINED_MS;
      await Promise.all(
        Array.from({ length: CONCURRENT }, async (_, lane) => {
          while (performance.now() < end) {
            const id = next++;
            await (lane % 2 === 0 ? pay(api, id, sustained) : status(api, base + (id % CONCURRENT), sustained));
          }
        }),
      );
      const rate = (sustained.envelope + sustained.other) / (SUSTAINED_MS / 1000);
      console.log(`  ${mode}`);
      console.log(
        `    burst:     ${burst.envelope}/${burst.envelope + burst.other} envelopes in ${(burstMs / 1000).toFixed(1)} s${burst.samples.length ? `; others: ${burst.samples.join(' | ')}` : ''}`,
      );
      console.log(
        `    sustained: ${sustained.envelope}/${sustained.envelope + sustained.other} envelopes, ${rate.toFixed(0)} requests/s${sustained.samples.length ? `; others: ${sustained.samples.join(' | ')}` : ''}`,
      );
      base += CONCURRENT * 40;
    } finally {
      await offline.stop();
    }
  }
}
