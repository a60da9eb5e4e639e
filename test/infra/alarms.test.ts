type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
const alarms = require('../../infra/alarms.js') as (options: { resolveVariable(name: string): Promise<unknown> }) => Promise<{ Resources: Resources }>;

/** infra/alarms.js as serverless resolves it, with the stage params given. */
async function alarmResources(params: Record<string, string>): Promise<Resources> {
  const values: Record<string, string> = { 'self:service': 'paynow', 'sls:stage': 'prod', 'param:alarmEmail': 'ops@example.com', ...params };
  return (await alarms({ resolveVariable: async (name: string) => values[name] })).Resources;
}

async function alarmIds(params: Record<string, string>): Promise<string[]> {
  const resources = await alarmResources(params);
  return Object.keys(resources).filter((id) => resources[id].Type === 'AWS::CloudWatch::Alarm');
}

it('alarms on every refund case when automatic refunds are off, and only on failed refunds when they are on', async () => {
  const automatic = await alarmIds({ 'param:autoRefundDuplicates': 'true' });
  const manual = await alarmIds({ 'param:autoRefundDuplicates': 'false' });
  expect(automatic).not.toContain('RefundRequiredAlarm');
  expect(manual).toContain('RefundRequiredAlarm');
  for (const ids of [automatic, manual])
    expect(ids).toEqual(expect.arrayContaining(['RefundFailedAlarm', 'RefundAbnormalAlarm', 'RefundOverdueAlarm', 'RefundContradictedAlarm']));
});

it('keeps a failing event endpoint in alarm between retries up to 8 hours apart: any count within 9 hours', async () => {
  const { EventEndpointFailingAlarm } = await alarmResources({ 'param:autoRefundDuplicates': 'true' });
  expect(EventEndpointFailingAlarm.Properties).toMatchObject({
    Period: 3600,
    EvaluationPeriods: 9,
    DatapointsToAlarm: 1,
    Threshold: 1,
    TreatMissingData: 'notBreaching',
  });
});

it('refuses a prod stage without an alarm e-mail: a deploy without it would delete the subscription and silence every alarm', async () => {
  await expect(alarmResources({ 'param:autoRefundDuplicates': 'true', 'param:alarmEmail': '' })).rejects.toThrow(/prod needs an alarm e-mail/);
  const dev = await alarms({ resolveVariable: async (name: string) => ({ 'self:service': 'paynow', 'sls:stage': 'dev', 'param:alarmEmail': '' })[name] });
  expect(Object.keys(dev.Resources)).not.toContain('AlarmEmailSubscription');
});

it('keeps an overdue refund in alarm between its hourly follow-ups, which come a minute or so late each: any count within two hours', async () => {
  const { RefundOverdueAlarm } = await alarmResources({ 'param:autoRefundDuplicates': 'true' });
  expect(RefundOverdueAlarm.Properties).toMatchObject({
    Period: 3600,
    EvaluationPeriods: 2,
    DatapointsToAlarm: 1,
    Threshold: 1,
    TreatMissingData: 'notBreaching',
  });
});
