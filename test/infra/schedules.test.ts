/**
 * The schedules serverless.yml builds from the stage params (infra/sweepSchedules.js,
 * infra/dispatchSchedules.js): one rule a minute per group, and a stage that cannot work refused when the
 * stack is packaged, not at a cold start.
 */
const sweepSchedules = require('../../infra/sweepSchedules.js') as Schedules;
const dispatchSchedules = require('../../infra/dispatchSchedules.js') as Schedules;

type Schedules = (ctx: {
  resolveVariable: (name: string) => Promise<unknown>;
}) => Promise<{ schedule: { name: string; rate: string; input: { group: number } } }[]>;

const params = (values: Record<string, unknown>) => ({
  resolveVariable: async (name: string) => {
    const fixed: Record<string, string> = { 'self:service': 'paynow', 'sls:stage': 'prod' };
    if (name in fixed) return fixed[name];
    const key = name.replace(/^param:/, '');
    if (!(key in values)) throw new Error(`no param ${key}`);
    return values[key];
  },
});

it('the sweeper: one rule a minute per group, each with its group, named after the stage and the group (one permission covers them)', async () => {
  const rules = await sweepSchedules(params({ sweepGroups: 4, sweepGatewayCallsPerSecond: 100 }));
  expect(rules).toEqual([0, 1, 2, 3].map((group) => ({ schedule: { name: `paynow-prod-sweeper-${group}`, rate: 'rate(1 minute)', input: { group } } })));
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
  expect(await dispatchSchedules(params({ dispatchGroups: 2 }))).toEqual(
    [0, 1].map((group) => ({ schedule: { name: `paynow-prod-dispatchEvents-${group}`, rate: 'rate(1 minute)', input: { group } } })),
  );
  await expect(dispatchSchedules(params({ dispatchGroups: 17 }))).rejects.toThrow('param dispatchGroups must be an integer from 1 to 16, got 17');
  await expect(dispatchSchedules(params({ dispatchGroups: 0 }))).rejects.toThrow('param dispatchGroups must be an integer from 1 to 16, got 0');
});

describe('one invoke permission per scheduled function (infra/schedulePermissions.js)', () => {
  const { collapseSchedulePermissions } = require('../../infra/schedulePermissions.js') as {
    collapseSchedulePermissions: (serverless: unknown) => void;
  };
  type Resource = { Type: string; Properties: Record<string, unknown> };
  /** A compiled template as serverless leaves it: a rule and a permission per schedule, and an API permission. */
  function compiled(ruleNames: (string | undefined)[]) {
    const resources: Record<string, Resource> = {
      SweeperLambdaFunction: { Type: 'AWS::Lambda::Function', Properties: {} },
      PayOrderLambdaPermissionHttpApi: {
        Type: 'AWS::Lambda::Permission',
        Properties: { FunctionName: { 'Fn::GetAtt': ['PayOrderLambdaFunction', 'Arn'] }, Principal: 'apigateway.amazonaws.com' },
      },
    };
    ruleNames.forEach((Name, i) => {
      resources[`SweeperEventsRuleSchedule${i + 1}`] = { Type: 'AWS::Events::Rule', Properties: { Name, ScheduleExpression: 'rate(1 minute)' } };
      resources[`SweeperLambdaPermissionEventsRuleSchedule${i + 1}`] = {
        Type: 'AWS::Lambda::Permission',
        Properties: {
          FunctionName: { 'Fn::GetAtt': ['SweeperLambdaFunction', 'Arn'] },
          Action: 'lambda:InvokeFunction',
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': [`SweeperEventsRuleSchedule${i + 1}`, 'Arn'] },
        },
      };
    });
    const serverless = {
      service: { service: 'paynow', provider: { compiledCloudFormationTemplate: { Resources: resources } }, getAllFunctions: () => ['sweeper', 'payOrder'] },
      getProvider: () => ({
        getStage: () => 'prod',
        naming: {
          getNormalizedFunctionName: (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}`,
          getLambdaLogicalId: (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`,
        },
      }),
    };
    return { resources, serverless };
  }

  it("replaces the sweeper's 64 permissions with one on exactly its rules' names, in this account; other permissions stay", () => {
    const { resources, serverless } = compiled(Array.from({ length: 64 }, (_, group) => `paynow-prod-sweeper-${group}`));
    collapseSchedulePermissions(serverless);
    const permissions = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Permission');
    expect(permissions.map(([id]) => id).sort()).toEqual(['PayOrderLambdaPermissionHttpApi', 'SweeperLambdaPermissionSchedules']);
    expect(resources.SweeperLambdaPermissionSchedules?.Properties).toEqual({
      FunctionName: { 'Fn::GetAtt': ['SweeperLambdaFunction', 'Arn'] },
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub placeholders, not a template string
      SourceArn: { 'Fn::Sub': 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/paynow-prod-sweeper-*' },
    });
    expect(Object.keys(resources).filter((id) => id.startsWith('SweeperEventsRule'))).toHaveLength(64); // the rules stay
  });

  it('refuses a schedule without a name of that form: the one permission would not cover it', () => {
    for (const names of [
      ['paynow-prod-sweeper-0', undefined],
      ['paynow-prod-sweeper-0', 'paynow-dev-sweeper-1'],
    ]) {
      const { serverless } = compiled(names);
      expect(() => collapseSchedulePermissions(serverless)).toThrow('the schedules of sweeper must be named paynow-prod-sweeper-<n>');
    }
  });
});
