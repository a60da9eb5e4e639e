import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { CHANNELS } from './domain/model';
import { log } from './log';

/** The CloudWatch namespace of every paynow metric; the `service` dimension names the stage (`paynow-prod`). */
export const METRICS_NAMESPACE = 'Paynow';

/**
 * The closed set of metrics, each with the dimension sets it is published under (`service` is always
 * added) and the values a dimension can take where they are a closed set. An alarm must name one of
 * these sets exactly, with one of these values: infra/alarms.js is checked against this list.
 */
const OPERATIONS = ['prepay', 'query', 'close', 'refund', 'refund_query'] as const;

export const METRIC_CATALOGUE = {
  /** POST /order/pay: `outcome` is `ok` or the error code answered; `method` the pay_method or `none`. */
  PayRequest: { unit: MetricUnit.Count, dimensionSets: [['method', 'outcome']], values: {} },
  /** One call to a gateway. */
  GatewayCall: {
    unit: MetricUnit.Count,
    dimensionSets: [['channel', 'operation'], ['channel']],
    values: { channel: CHANNELS, operation: OPERATIONS },
  },
  /** A gateway call that failed: unreachable, timed out, a 5xx, an answer we could not verify. */
  GatewayError: {
    unit: MetricUnit.Count,
    dimensionSets: [['channel', 'operation'], ['channel']],
    values: { channel: CHANNELS, operation: OPERATIONS },
  },
  GatewayLatency: {
    unit: MetricUnit.Milliseconds,
    dimensionSets: [['channel', 'operation']],
    values: { channel: CHANNELS, operation: OPERATIONS },
  },
  NotificationAccepted: { unit: MetricUnit.Count, dimensionSets: [['channel']], values: { channel: CHANNELS } },
  /** A notification answered with a refusal (lib/gateways/paymentGateway.ts, NotificationVerdict). */
  NotificationRefused: {
    unit: MetricUnit.Count,
    dimensionSets: [['channel', 'reason'], ['reason'], []],
    values: {
      channel: CHANNELS,
      reason: [
        'bad_signature',
        'unknown_serial',
        'stale',
        'malformed',
        'undecryptable',
        'merchant_mismatch',
        'missing_fields',
        'unknown_attempt',
        'unknown_refund',
        'amount_mismatch',
        'unexpected_trade',
      ],
    },
  },
  /** What a payment the gateway vouches for did. */
  Completion: {
    unit: MetricUnit.Count,
    dimensionSets: [['outcome']],
    values: { outcome: ['captured', 'paid_late', 'duplicate', 'conflict', 'refund_required', 'mismatch', 'unknown_attempt'] },
  },
  /**
   * A refund moving: requested (recorded, for an operator or a refund case), succeeded, failed (final:
   * a person must look), abnormal (WeChat cannot pay it into the payer's account: a person must send it
   * on; counted once per refund), retry (a follow-up the gateway could not answer), overdue (still
   * pending a day later), contradicted (a gateway reported the opposite of a final result).
   */
  Refund: {
    unit: MetricUnit.Count,
    dimensionSets: [['kind', 'outcome'], ['outcome']],
    values: { kind: ['order', 'duplicate'], outcome: ['requested', 'succeeded', 'failed', 'abnormal', 'retry', 'overdue', 'contradicted'] },
  },
  /** One sweeper run's attempts by result. */
  SweepAttempt: { unit: MetricUnit.Count, dimensionSets: [['result']], values: { result: ['paid', 'released', 'unwatched', 'failed'] } },
  /** Sweep runs (one per group) that ended with due attempts they had no time for: the sweeping is falling behind. */
  SweepBehind: { unit: MetricUnit.Count, dimensionSets: [[]], values: {} },
  /**
   * Events to the shop by what their delivery did: delivered (every target took it), retrying (failed,
   * tried again later), failing (failed again after 5 attempts or more: the endpoint is down), dead
   * (the last retry failed: a person redelivers it).
   */
  EventDelivery: { unit: MetricUnit.Count, dimensionSets: [['outcome']], values: { outcome: ['delivered', 'retrying', 'failing', 'dead'] } },
  /** The stage secret could not be read again; the keys already in use stay. */
  SecretRefreshFailed: { unit: MetricUnit.Count, dimensionSets: [[]], values: {} },
} as const;

type Catalogue = typeof METRIC_CATALOGUE;
export type MetricName = keyof Catalogue;
type DimensionName<N extends MetricName> = Catalogue[N]['dimensionSets'][0][number];
/**
 * The dimensions of a metric: the keys of its fullest set, each limited to its closed set of values
 * where the catalogue has one (an alarm names such a value, so a typo must not compile).
 */
export type MetricDimensions<N extends MetricName> = {
  [K in DimensionName<N>]: K extends keyof Catalogue[N]['values']
    ? Catalogue[N]['values'][K] extends readonly string[]
      ? Catalogue[N]['values'][K][number]
      : string
    : string;
};

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
  // One instance, flushed at once as one EMF line (publishStoredMetrics clears it, whatever happens):
  // Powertools' singleMetric() builds a whole new Metrics, with its own Console, for every metric.
  for (const set of dimensionSets) {
    powertools.addDimensions(Object.fromEntries((set as readonly string[]).map((key) => [key, (dimensions as Record<string, string>)[key]])));
  }
  powertools.addMetric(name, unit, value);
  powertools.publishStoredMetrics();
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
