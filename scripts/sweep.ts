/**
 * npm run sweep
 * Runs the local stack's sweeper once, now, instead of waiting for its next minute: open attempts
 * settled or released, released ones checked again, pending refunds sent or queried. Prints its report.
 */
import { invokeLocalFunction } from './local/invokeLocal';

invokeLocalFunction('sweeper', {}).then(
  (report) => {
    console.log(JSON.stringify(report, null, 2));
    process.exit(0);
  },
  (error: Error) => {
    console.error(`sweep failed: ${error.message}`);
    process.exit(2);
  },
);
