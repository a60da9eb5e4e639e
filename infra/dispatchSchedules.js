// The dispatcher's schedules: one rule a minute per group of the outbox's 16 shards (stage param
// `dispatchGroups`), each invoking the function with `{"group": n}`, so the groups deliver side by side
// (lib/events/dispatchEvents.ts, docs/capacity.md). Named `<service>-<stage>-dispatchEvents-<group>`:
// one permission covers them all (infra/schedulePermissions.js).
module.exports = async ({ resolveVariable }) => {
  const groups = Number(await resolveVariable('param:dispatchGroups'));
  if (!Number.isInteger(groups) || groups < 1 || groups > 16) throw new Error(`param dispatchGroups must be an integer from 1 to 16, got ${groups}`);
  const prefix = `${await resolveVariable('self:service')}-${await resolveVariable('sls:stage')}-dispatchEvents`;
  return Array.from({ length: groups }, (_, group) => ({ schedule: { name: `${prefix}-${group}`, rate: 'rate(1 minute)', input: { group } } }));
};
