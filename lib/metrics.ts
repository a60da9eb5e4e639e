import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { log } from './log';

/** The CloudWatch namespace of every paynow metric; the `service` dimension names the stage (`paynow-prod`). */
export const METRICS_NAMESPACE = 'Paynow';

/**
 * The closed set of metrics, each with the dimension sets it is published under (`service` is always
 * added). An alarm must name one of these sets exactly: infra/alarms.js is checked against this list.
 */
export const METRIC_CATALOGUE = {
  /** POST /order/pay: `outcome` is `ok` or the error code answered; `method` the pay_method or `none`. */
  PayRequest: { unit: MetricUnit.Count, dimensionSets: [['method', 'outcome']] },
  /** One call to a gateway (`operation`: prepay, query, close). */
  GatewayCall: { unit: MetricUnit.Count, dimensionSets: [['channel', 'operation'], ['channel']] },
  /** A gateway call that failed: unreachable, timed out, a 5xx, an answer we could not verify. */
  GatewayError: { unit: MetricUnit.Count, dimensionSets: [['channel', 'operation'], ['channel']] },
  GatewayLatency: { unit: MetricUnit.Milliseconds, dimensionSets: [['channel', 'operation']] },
  NotificationAccepted: { unit: MetricUnit.Count, dimensionSets: [['channel']] },
  /** A notification answered with a refusal; `reason` as in lib/gateways/paymentGateway.ts (NotificationVerdict). */
  NotificationRefused: { unit: MetricUnit.Count, dimensionSets: [['channel', 'reason'], ['reason'], []] },
  /** What a payment the gateway vouches for did: captured, paid_late, duplicate, refund_required, mismatch, unknown_attempt. */
  Completion: { unit: MetricUnit.Count, dimensionSets: [['outcome']] },
  /** One sweeper run's attempts by `result`: paid, released, unwatched, waiting, failed. */
  SweepAttempt: { unit: MetricUnit.Count, dimensionSets: [['result']] },
  /** The stage's secret could not be read again; the keys already in use stay. */
  SecretRefreshFailed: { unit: MetricUnit.Count, dimensionSets: [[]] },
} as const;

type Catalogue = typeof METRIC_CATALOGUE;
export type MetricName = keyof Catalogue;
/** The dimensions of a metric: the keys of its fullest set. */
export type MetricDimensions<N extends MetricName> = Record<Catalogue[N]['dimensionSets'][0][number], string>;

const HIERARCHICAL_SETS_NOTE = /is defined as both a dimension set and dimension set/;

const powertools = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'paynow',
  logger: {
    // Nested dimension sets share keys by design (same value in each): Powertools' note about that is noise.
    warn: (message: string) => {
      if (!HIERARCHICAL_SETS_NOTE.test(message)) log.warn('metrics', { note: message });
    },
    error: (message: string) => log.error('metrics', { note: message }),
    info: () => undefined,
    debug: () => undefined,
  } as never,
});

function publish<N extends MetricName>(name: N, value: number, dimensions: MetricDimensions<N>): void {
  const { unit, dimensionSets } = METRIC_CATALOGUE[name];
  const metric = powertools.singleMetric();
  for (const set of dimensionSets) {
    metric.addDimensions(Object.fromEntries((set as readonly string[]).map((key) => [key, (dimensions as Record<string, string>)[key]])));
  }
  // A single metric is written at once, as one CloudWatch EMF line on stdout.
  metric.addMetric(name, unit, value);
}

/**
 * Counts and timings, one EMF line each (also printed by the local stack).
 *
 * @example metrics.count('Completion', { outcome: 'refund_required' })
 */
export const metrics = {
  count<N extends MetricName>(name: N, dimensions: MetricDimensions<N>, value = 1): void {
    publish(name, value, dimensions);
  },
  milliseconds<N extends MetricName>(name: N, ms: number, dimensions: MetricDimensions<N>): void {
    publish(name, Math.round(ms), dimensions);
  },
};
