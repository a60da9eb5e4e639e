// Runs before every test file: quiet logs unless a test asks for them, and no Node 22 nag from the AWS SDK.
process.env.LOG_LEVEL ??= 'silent';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
