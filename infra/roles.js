// One IAM role per function, each allowed only what its code path uses (and the platform does on its
// behalf: its own log group, the sweeper's failure queue). Resolved by serverless.yml
// (`${file(infra/roles.js)}`); test/infra/roles.test.ts checks every role against the AWS calls the
// functions really make in the integration tests. ARNs are built with ${AWS::Partition}, so the stack
// deploys in the China partition (aws-cn) too.

const TABLE = { 'Fn::GetAtt': ['PaynowTable', 'Arn'] };
const index = (name) => ({ 'Fn::Join': ['/', [TABLE, 'index', name]] });

// Item reads and transactions: a TransactGetItems needs GetItem, a TransactWriteItems needs the
// action of each of its parts (PutItem, UpdateItem); no code path deletes or scans.
const READ_AND_TRANSACT = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];

/** What each function may do, by resource. */
const FUNCTION_PERMISSIONS = {
  // Reads the order, address and points in one BatchGetItem.
  payOrder: { table: [...READ_AND_TRANSACT, 'dynamodb:BatchGetItem'] },
  payStatus: { table: READ_AND_TRANSACT },
  notifyWechat: { table: READ_AND_TRANSACT },
  notifyAlipay: { table: READ_AND_TRANSACT },
  notifyWechatRefund: { table: READ_AND_TRANSACT },
  // A refund after a failed one checks, in its transaction, that the failed one is failed (ConditionCheck).
  refundOrder: { table: [...READ_AND_TRANSACT, 'dynamodb:ConditionCheckItem'] },
  // Revoking a session deletes it.
  shopCommand: { table: [...READ_AND_TRANSACT, 'dynamodb:DeleteItem'] },
  sweeper: { table: READ_AND_TRANSACT, indexes: { 'open-attempts': ['dynamodb:Query'] }, failureQueue: 'SweeperFailureQueue' },
  // Reads undelivered events from their index partitions and records each delivery; puts events on
  // the stage's bus when one is configured.
  dispatchEvents: { table: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], indexes: { 'open-attempts': ['dynamodb:Query'] }, eventBus: true },
};

const roleName = (fn) => `${fn.charAt(0).toUpperCase()}${fn.slice(1)}ExecutionRole`;

module.exports = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const secretName = await resolveVariable('self:custom.secretName');
  const eventBusName = await resolveVariable('param:eventBusName');
  const Resources = {};
  for (const [fn, permissions] of Object.entries(FUNCTION_PERMISSIONS)) {
    const statements = [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${service}-${stage}-${fn}:*` },
      },
      // Secrets Manager adds six random characters to a secret's ARN.
      {
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue'],
        Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secretName}-??????` },
      },
      { Effect: 'Allow', Action: permissions.table, Resource: TABLE },
      ...Object.entries(permissions.indexes ?? {}).map(([name, actions]) => ({ Effect: 'Allow', Action: actions, Resource: index(name) })),
      // Lambda sends a failed asynchronous invocation to the destination with the function's own role.
      ...(permissions.eventBus && eventBusName
        ? [
            {
              Effect: 'Allow',
              Action: ['events:PutEvents'],
              Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/${eventBusName}` },
            },
          ]
        : []),
      ...(permissions.failureQueue ? [{ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [permissions.failureQueue, 'Arn'] } }] : []),
    ];
    Resources[roleName(fn)] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        },
        Policies: [{ PolicyName: `${service}-${stage}-${fn}`, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
      },
    };
  }
  return { Resources };
};

module.exports.FUNCTION_NAMES = Object.keys(FUNCTION_PERMISSIONS);
module.exports.roleName = roleName;
