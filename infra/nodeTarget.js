// esbuild's target for the Lambda runtime picked by the stage param `runtime` (nodejs24.x -> node24),
// so that choosing nodejs22.x for a region cannot leave the bundles built for Node 24.
module.exports = async ({ resolveVariable }) => {
  const runtime = await resolveVariable('param:runtime');
  const version = /^nodejs(\d+)\.x$/.exec(runtime);
  if (!version) throw new Error(`param runtime must look like nodejs24.x, got ${runtime}`);
  return `node${version[1]}`;
};
