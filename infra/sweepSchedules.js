// The sweeper's schedules: one rule a minute per group of due shards (stage param `sweepGroups`),
// each invoking the function with `{"group": n}`, so the groups are swept side by side
// (lib/pay/sweep.ts, docs/capacity.md).
module.exports = async ({ resolveVariable }) => {
  const groups = Number(await resolveVariable('param:sweepGroups'));
  if (!Number.isInteger(groups) || groups < 1 || groups > 128) throw new Error(`param sweepGroups must be an integer from 1 to 128, got ${groups}`);
  return Array.from({ length: groups }, (_, group) => ({ schedule: { rate: 'rate(1 minute)', input: { group } } }));
};
