/**
 * The schedules serverless.yml builds from the stage params (infra/sweepSchedules.js,
 * infra/dispatchSchedules.js): one rule a minute per group, and a stage that cannot work refused when the
 * stack is packaged, not at a cold start.
 */
const sweepSchedules = require('../../infra/sweepSchedules.js') as Schedules;
const dispatchSchedules = require('../../infra/dispatchSchedules.js') as Schedules;

type Schedules = (ctx: { resolveVariable: (name: string) => Promise<unknown> }) => Promise<{ schedule: { rate: string; input: { group: number } } }[]>;

const params = (values: Record<string, unknown>) => ({
  resolveVariable: async (name: string) => {
    const key = name.replace(/^param:/, '');
    if (!(key in values)) throw new Error(`no param ${key}`);
    return values[key];
  },
});

it('the sweeper: one rule a minute per group, each with its group', async () => {
  const rules = await sweepSchedules(params({ sweepGroups: 4, sweepGatewayCallsPerSecond: 100 }));
  expect(rules).toEqual([0, 1, 2, 3].map((group) => ({ schedule: { rate: 'rate(1 minute)', input: { group } } })));
});

it('refuses a sweeping cap below one gateway call a second per group: each worker makes at least one, so together they would pass it', async () => {
  await expect(sweepSchedules(params({ sweepGroups: 64, sweepGatewayCallsPerSecond: 64 }))).resolves.toHaveLength(64);
  await expect(sweepSchedules(params({ sweepGroups: 64, sweepGatewayCallsPerSecond: 63 }))).rejects.toThrow(
    'param sweepGatewayCallsPerSecond must be an integer of at least sweepGroups (64), got 63',
  );
  await expect(sweepSchedules(params({ sweepGroups: 129, sweepGatewayCallsPerSecond: 1000 }))).rejects.toThrow(
    'param sweepGroups must be an integer from 1 to 128',
  );
});

it('the dispatcher: one rule a minute per group of the 16 outbox shards, at most 16', async () => {
  expect(await dispatchSchedules(params({ dispatchGroups: 2 }))).toEqual([0, 1].map((group) => ({ schedule: { rate: 'rate(1 minute)', input: { group } } })));
  await expect(dispatchSchedules(params({ dispatchGroups: 17 }))).rejects.toThrow('param dispatchGroups must be an integer from 1 to 16, got 17');
  await expect(dispatchSchedules(params({ dispatchGroups: 0 }))).rejects.toThrow('param dispatchGroups must be an integer from 1 to 16, got 0');
});
