// Runs before every test file. The AWS SDK's notice that its 2027 releases need Node 22 is about the
// local Node 20 the suite also runs on, not about the deployed runtime.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

// The functions log and write metrics as they do on AWS (JSON lines on stdout/stderr); the suite keeps
// those lines out of its own output, and `captureOutput` (test/support/logs.ts) hands them to a test.
// Filtering the streams, not silencing the logger: a test then sees exactly what CloudWatch would.
import { installOutputFilter } from './logs';

installOutputFilter();
