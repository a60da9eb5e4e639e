// The alarms that tell a person when money is at risk, all to one SNS topic (its e-mail is the stage
// param `alarmEmail`). Resolved by serverless.yml (`${file(infra/alarms.js)}`). Each alarm on a paynow
// metric names one of the dimension sets the metric is published with (lib/metrics.ts): otherwise it
// would watch a metric that never gets data. test/infra/package.test.ts checks that. Missing data never
// breaches: a quiet shop is not an incident. README "Runbook" says what each one means and what to do.

const { FUNCTION_NAMES } = require('./roles');

const NAMESPACE = 'Paynow';

module.exports = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const serviceName = `${service}-${stage}`;
  const autoRefunds = String(await resolveVariable('param:autoRefundDuplicates')) === 'true';
  const topic = { Ref: 'AlarmTopic' };
  const Resources = {};

  const alarm = (id, description, properties) => {
    Resources[`${id}Alarm`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${serviceName}-${id}`,
        AlarmDescription: description,
        AlarmActions: [topic],
        OKActions: [topic],
        TreatMissingData: 'notBreaching',
        EvaluationPeriods: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        ...properties,
      },
    };
  };
  // `periodsInAlarm`: for a metric counted only now and then, how many periods since the last count
  // keep the alarm in alarm (any one count among them breaches).
  const paynowMetric = (name, dimensions, { period = 60, threshold = 1, periodsInAlarm = 1 } = {}) => ({
    Namespace: NAMESPACE,
    MetricName: name,
    Dimensions: Object.entries({ service: serviceName, ...dimensions }).map(([Name, Value]) => ({ Name, Value })),
    Statistic: 'Sum',
    Period: period,
    Threshold: threshold,
    ...(periodsInAlarm > 1 ? { EvaluationPeriods: periodsInAlarm, DatapointsToAlarm: 1 } : {}),
  });

  // With automatic refunds a refund case needs no one unless its refund fails (RefundFailed).
  if (!autoRefunds) {
    alarm(
      'RefundRequired',
      'Money arrived for an order that cannot take it and automatic refunds are off: refund it (npm run reconcile lists it; README "Refunds").',
      paynowMetric('Completion', { outcome: 'refund_required' }),
    );
  }
  alarm(
    'RefundFailed',
    'A refund finally failed at its gateway: the money is still with the merchant. README "Refunds" says what to do (npm run reconcile lists it).',
    paynowMetric('Refund', { outcome: 'failed' }),
  );
  alarm(
    'RefundAbnormal',
    'WeChat took a refund but cannot pay it into the payer\'s account (a closed card or account): the money waits at WeChat until a person sends it on in the merchant platform (README "When a refund is abnormal").',
    paynowMetric('Refund', { outcome: 'abnormal' }),
  );
  alarm(
    'RefundOverdue',
    'A refund is still pending a day after it was asked (the gateway keeps answering processing or errors): check it in the merchant console.',
    // Counted at each follow-up, hourly by then but a minute or so late each time: an hour with none
    // must not tell the person it is over, so any count in the last two hours keeps it in alarm.
    paynowMetric('Refund', { outcome: 'overdue' }, { period: 3600, periodsInAlarm: 2 }),
  );
  alarm(
    'RefundContradicted',
    'A gateway reported the opposite of a refund result already recorded: compare the merchant console with npm run reconcile.',
    paynowMetric('Refund', { outcome: 'contradicted' }),
  );
  alarm(
    'PaymentUnknown',
    'A gateway vouched for a payment of an out_trade_no paynow has no attempt for (a notification, a query): the money is at the merchant and nothing records it. Find the trade in the merchant console (README "Logs, metrics and alarms").',
    paynowMetric('Completion', { outcome: 'unknown_attempt' }),
  );
  alarm(
    'RefundNotificationUnknown',
    'A correctly signed refund notification named a refund paynow has no record of: a refund made outside paynow (by hand in the merchant console), or a misconfiguration.',
    paynowMetric('NotificationRefused', { reason: 'unknown_refund' }),
  );
  alarm(
    'PaymentAmountMismatch',
    'A gateway vouched for a payment whose amount or channel differs from its attempt: nothing was recorded.',
    paynowMetric('Completion', { outcome: 'mismatch' }),
  );
  alarm(
    'PaymentConflict',
    'A gateway vouched for a second payment of an attempt already paid, under another transaction id: kept for a person (npm run reconcile lists it).',
    paynowMetric('Completion', { outcome: 'conflict' }),
  );
  alarm(
    'NotificationMerchantMismatch',
    'A correctly signed notification named another merchant or app: a misconfiguration or an attack.',
    paynowMetric('NotificationRefused', { reason: 'merchant_mismatch' }),
  );
  alarm(
    'NotificationRefusalSpike',
    'Many notifications refused in 5 minutes (bad signatures, stale, malformed): a key rotation gone wrong, or forgeries.',
    paynowMetric('NotificationRefused', {}, { period: 300, threshold: 20 }),
  );
  alarm(
    'SweepAttemptFailures',
    'The sweeper could not settle or release an attempt (gateway or database errors); it retries every minute.',
    paynowMetric('SweepAttempt', { result: 'failed' }, { period: 300 }),
  );
  alarm(
    'SweepBehind',
    'Sweep runs keep ending with due attempts they had no time for (3 or more in 5 minutes): a backlog, or a slow gateway holding up the attempts of its own channel. Abandoned attempts keep their points past expiry + 5 minutes, payments without a notification wait past 10.',
    paynowMetric('SweepBehind', {}, { period: 300, threshold: 3 }),
  );
  alarm(
    'EventEndpointFailing',
    "The shop's event endpoint has failed 5 deliveries or more in a row (about 20 minutes): its fulfilment is not told about paid orders. Retries go on for about 32 hours.",
    // Counted at each retry from the 5th, by then up to 8 hours apart: a quiet hour between two must not
    // tell the person it is over, so any count within 9 hours keeps it in alarm.
    paynowMetric('EventDelivery', { outcome: 'failing' }, { period: 3600, periodsInAlarm: 9 }),
  );
  alarm(
    'EventDeliveryDead',
    'An event to the shop failed its last retry: redeliver it once the endpoint works (npm run shop -- redeliver, README "Events").',
    paynowMetric('EventDelivery', { outcome: 'dead' }),
  );
  alarm(
    'SecretRefreshFailed',
    'The stage secret could not be read again (or its new version is malformed); the functions keep the keys they have.',
    paynowMetric('SecretRefreshFailed', {}, { period: 300 }),
  );

  // The one alarm where missing data breaches: a sweeper that stops being invoked (a disabled schedule,
  // reserved concurrency 0) sends no metric at all, and only it finds payments whose notification never
  // came and follows up pending refunds. Its schedules invoke it every minute.
  alarm(
    'SweeperNotRunning',
    'The sweeper was not invoked for 10 minutes: its schedules are off or it cannot run. Paid attempts without a notification and pending refunds wait until it runs again.',
    {
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: `${serviceName}-sweeper` }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 2,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    },
  );

  alarm('SweeperFailureQueue', 'A whole sweeper run failed and was sent to its failure queue.', {
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['SweeperFailureQueue', 'QueueName'] } }],
    Statistic: 'Maximum',
    Period: 300,
    Threshold: 1,
  });

  alarm('Api5xx', 'The API answered 5xx (INTERNAL_ERROR, or a notification asking the gateway to resend) at least 5 times in 5 minutes.', {
    Namespace: 'AWS/ApiGateway',
    MetricName: '5xx',
    Dimensions: [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }],
    Statistic: 'Sum',
    Period: 300,
    Threshold: 5,
  });

  for (const channel of ['wechat', 'alipay']) {
    const title = channel === 'wechat' ? 'Wechat' : 'Alipay';
    alarm(`${title}GatewayErrorRate`, `More than 10% of ${channel} gateway calls failed in 5 minutes (at least 5 calls).`, {
      Threshold: 10,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: [
        {
          Id: 'errors',
          ReturnData: false,
          MetricStat: {
            Metric: {
              Namespace: NAMESPACE,
              MetricName: 'GatewayError',
              Dimensions: [
                { Name: 'service', Value: serviceName },
                { Name: 'channel', Value: channel },
              ],
            },
            Period: 300,
            Stat: 'Sum',
          },
        },
        {
          Id: 'calls',
          ReturnData: false,
          MetricStat: {
            Metric: {
              Namespace: NAMESPACE,
              MetricName: 'GatewayCall',
              Dimensions: [
                { Name: 'service', Value: serviceName },
                { Name: 'channel', Value: channel },
              ],
            },
            Period: 300,
            Stat: 'Sum',
          },
        },
        { Id: 'rate', Label: `${channel} gateway error %`, ReturnData: true, Expression: 'IF(calls >= 5, 100 * errors / calls, 0)' },
      ],
    });
  }

  for (const fn of FUNCTION_NAMES) {
    const title = `${fn.charAt(0).toUpperCase()}${fn.slice(1)}`;
    const lambdaMetric = (name) => ({
      Namespace: 'AWS/Lambda',
      MetricName: name,
      Dimensions: [{ Name: 'FunctionName', Value: `${serviceName}-${fn}` }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
    });
    alarm(`${title}Errors`, `${fn} failed an invocation (a crash, a timeout, a failed cold start).`, lambdaMetric('Errors'));
    alarm(`${title}Throttles`, `${fn} was throttled: requests were turned away by Lambda.`, lambdaMetric('Throttles'));
  }

  const email = await resolveVariable('param:alarmEmail');
  // A --param lasts one deploy: a prod deploy without it would delete the subscription, and every alarm
  // would then reach nobody, silently. So prod refuses to deploy without one (README "Deploy from zero").
  if (stage === 'prod' && !email) {
    throw new Error('prod needs an alarm e-mail: set alarmEmail under params.prod in serverless.yml (or --param alarmEmail=… on every deploy)');
  }
  return {
    Resources: {
      // Unencrypted on purpose: CloudWatch cannot publish to a topic under the AWS-managed SNS key, and
      // an alarm carries names and counts, nothing secret.
      AlarmTopic: { Type: 'AWS::SNS::Topic', Properties: { TopicName: `${serviceName}-alarms` } },
      ...(email ? { AlarmEmailSubscription: { Type: 'AWS::SNS::Subscription', Properties: { TopicArn: topic, Protocol: 'email', Endpoint: email } } } : {}),
      ...Resources,
    },
  };
};
