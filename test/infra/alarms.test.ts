type Resources = Record<string, { Type: string }>;
const alarms = require('../../infra/alarms.js') as (options: { resolveVariable(name: string): Promise<unknown> }) => Promise<{ Resources: Resources }>;

/** infra/alarms.js as serverless resolves it, with the stage params given. */
async function alarmIds(params: Record<string, string>): Promise<string[]> {
  const values: Record<string, string> = { 'self:service': 'paynow', 'sls:stage': 'prod', ...params };
  const { Resources } = await alarms({ resolveVariable: async (name: string) => values[name] });
  return Object.keys(Resources).filter((id) => Resources[id].Type === 'AWS::CloudWatch::Alarm');
}

it('alarms on every refund case when automatic refunds are off, and only on failed refunds when they are on', async () => {
  const automatic = await alarmIds({ 'param:autoRefundDuplicates': 'true' });
  const manual = await alarmIds({ 'param:autoRefundDuplicates': 'false' });
  expect(automatic).not.toContain('RefundRequiredAlarm');
  expect(manual).toContain('RefundRequiredAlarm');
  for (const ids of [automatic, manual]) expect(ids).toEqual(expect.arrayContaining(['RefundFailedAlarm', 'RefundOverdueAlarm', 'RefundContradictedAlarm']));
});
