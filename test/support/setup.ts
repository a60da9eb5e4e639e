// Runs before every test file: quiet logs unless a test asks for them. The AWS SDK's notice that its
// 2027 releases need Node 22 is about the local Node 20 the suite also runs on, not about the deployed runtime.
process.env.LOG_LEVEL ??= 'silent';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
