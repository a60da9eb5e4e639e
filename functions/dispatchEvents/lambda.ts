// The Lambda entry (an ES module): the stage secret is read and checked while the function starts, so
// a missing or malformed secret fails the cold start, naming the field, and counts as a function error.
import { app, handler } from './handler';

await app.ready();

export { handler };
