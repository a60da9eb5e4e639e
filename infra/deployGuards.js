// A serverless plugin: refuses to deploy functions that would use the local database. DYNAMODB_ENDPOINT
// comes from the shell (the local stack sets it); left over in a deploying shell, every function would
// send its reads and writes there, and none would reach the table.
class DeployGuards {
  constructor(serverless) {
    const guard = () => refuseLocalEndpoint(serverless.service.provider.environment ?? {});
    this.hooks = { 'before:deploy:deploy': guard, 'before:deploy:function:deploy': guard };
  }
}

function refuseLocalEndpoint(environment) {
  if (environment.DYNAMODB_ENDPOINT) throw new Error('DYNAMODB_ENDPOINT is set in this shell (the local database): unset it, then deploy');
}

module.exports = DeployGuards;
module.exports.refuseLocalEndpoint = refuseLocalEndpoint;
