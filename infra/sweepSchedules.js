// The sweeper's schedules: one rule a minute per group of due shards (stage param `sweepGroups`),
// each invoking the function with `{"group": n}`, so the groups are swept side by side
// (lib/pay/sweep.ts, docs/capacity.md). Named `<service>-<stage>-sweeper-<group>`: one permission
// covers them all (infra/schedulePermissions.js).
module.exports = async ({ resolveVariable }) => {
  const groups = Number(await resolveVariable('param:sweepGroups'));
  if (!Number.isInteger(groups) || groups < 1 || groups > 128) throw new Error(`param sweepGroups must be an integer from 1 to 128, got ${groups}`);
  // Each worker paces itself to at least one call a second (lib/pay/sweep.ts sweepShare): a smaller cap
  // would be passed by the workers together. Refused here, when the stack is packaged.
  const cap = Number(await resolveVariable('param:sweepGatewayCallsPerSecond'));
  if (!Number.isInteger(cap) || cap < groups)
    throw new Error(`param sweepGatewayCallsPerSecond must be an integer of at least sweepGroups (${groups}), got ${cap}`);
  const prefix = `${await resolveVariable('self:service')}-${await resolveVariable('sls:stage')}-sweeper`;
  return Array.from({ length: groups }, (_, group) => ({ schedule: { name: `${prefix}-${group}`, rate: 'rate(1 minute)', input: { group } } }));
};
