import * as sweeping from '../../lib/pay/sweep';
import { captureOutput, metricLines } from '../support/logs';
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

it('counts the runs that ran out of time with attempts still due (SweepBehind: 0 when it kept up)', async () => {
  const kept = await captureOutput(() => invoke({ group: 3 }));
  expect(metricLines(kept.lines, 'SweepBehind').map((line) => line.SweepBehind)).toEqual([0]);
  const run = jest.spyOn(sweeping, 'sweep').mockResolvedValue({ ...(kept.result as unknown as sweeping.SweepReport), behind: 1 });
  try {
    const behind = await captureOutput(() => invoke({ group: 3 }));
    expect(metricLines(behind.lines, 'SweepBehind').map((line) => line.SweepBehind)).toEqual([1]);
  } finally {
    run.mockRestore();
  }
});
