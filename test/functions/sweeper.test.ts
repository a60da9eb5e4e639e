import { captureOutput } from '../support/logs';
import { startTestStack, type TestStack } from '../support/stack';

/** The sweeper as its schedule invokes it (`{"group": n}`): a report, or a failed invocation that is logged. */
let stack: TestStack;
let handler: (event: unknown, context: unknown) => Promise<Record<string, number>>;
let app: typeof import('../../functions/sweeper/handler')['app'];

beforeAll(async () => {
  stack = await startTestStack();
  Object.assign(process.env, stack.env);
  ({ handler, app } = (await import('../../functions/sweeper/handler')) as never);
});
afterAll(() => stack.close());

const invoke = (event: unknown) => handler(event, { awsRequestId: 'schedule', functionName: 'sweeper', getRemainingTimeInMillis: () => 60_000 });

it("answers its group's report", async () => {
  expect(await invoke({ group: 1 })).toMatchObject({ busy: 0, failed: 0 });
});

it('fails the invocation when the run cannot go on, after logging it with the group and the error (the failure queue gets the event)', async () => {
  const findDueAttempts = app.store.findDueAttempts;
  app.store.findDueAttempts = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  try {
    const { lines } = await captureOutput(() => expect(invoke({ group: 2 })).rejects.toThrow('connect ECONNREFUSED'));
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'sweep run failed',
        group: 2,
        error: expect.objectContaining({ code: 'ECONNREFUSED', stack: expect.any(String) }),
      }),
    );
  } finally {
    app.store.findDueAttempts = findDueAttempts;
  }
});
