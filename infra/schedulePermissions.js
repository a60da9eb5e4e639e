// A serverless plugin: one invoke permission per scheduled function instead of one per rule.
// serverless gives each schedule event an AWS::Lambda::Permission, and a function's resource policy
// holds at most 20 KB: the prod sweeper's 64 rules (about 25 KB of statements) would fail the deploy
// with PolicyLengthExceededException (serverless/serverless#12308). The rules are named
// `<service>-<stage>-<function>-<group>` (infra/sweepSchedules.js, infra/dispatchSchedules.js), and one
// permission lets EventBridge invoke the function for exactly the rules of that name, in this account
// and region. A schedule without such a name is refused here, when the stack is packaged.

const SCHEDULE_PRINCIPAL = 'events.amazonaws.com';

class SchedulePermissions {
  constructor(serverless) {
    this.hooks = { 'after:package:compileEvents': () => collapseSchedulePermissions(serverless) };
  }
}

function collapseSchedulePermissions(serverless) {
  const resources = serverless.service.provider.compiledCloudFormationTemplate.Resources;
  const naming = serverless.getProvider('aws').naming;
  const prefix = `${serverless.service.service}-${serverless.getProvider('aws').getStage()}`;
  for (const name of serverless.service.getAllFunctions()) {
    const functionId = naming.getLambdaLogicalId(name);
    const perRule = Object.entries(resources).filter(
      ([, r]) =>
        r.Type === 'AWS::Lambda::Permission' &&
        r.Properties.Principal === SCHEDULE_PRINCIPAL &&
        r.Properties.FunctionName?.['Fn::GetAtt']?.[0] === functionId &&
        resources[r.Properties.SourceArn?.['Fn::GetAtt']?.[0]]?.Type === 'AWS::Events::Rule',
    );
    if (perRule.length === 0) continue;
    const rulePrefix = `${prefix}-${name}-`;
    for (const [, permission] of perRule) {
      const ruleName = resources[permission.Properties.SourceArn['Fn::GetAtt'][0]].Properties.Name;
      if (typeof ruleName !== 'string' || !ruleName.startsWith(rulePrefix))
        throw new Error(`the schedules of ${name} must be named ${rulePrefix}<n> (infra/schedulePermissions.js), got ${ruleName}`);
    }
    for (const [id] of perRule) delete resources[id];
    resources[`${naming.getNormalizedFunctionName(name)}LambdaPermissionSchedules`] = {
      Type: 'AWS::Lambda::Permission',
      Properties: {
        FunctionName: { 'Fn::GetAtt': [functionId, 'Arn'] },
        Action: 'lambda:InvokeFunction',
        Principal: SCHEDULE_PRINCIPAL,
        SourceAccount: { Ref: 'AWS::AccountId' },
        SourceArn: { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:rule/${rulePrefix}*` },
      },
    };
  }
}

module.exports = SchedulePermissions;
module.exports.collapseSchedulePermissions = collapseSchedulePermissions;
