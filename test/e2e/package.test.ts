import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSandboxCredentials } from '../../scripts/sandbox/credentials';
import { localFunctionEnvironment } from '../../scripts/local/environment';

/** `serverless package` builds the deployable artifacts offline; dev tooling must stay out of them. */
it('packages the functions without dev tooling or secrets in the code', async () => {
  const credentials = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  const env = localFunctionEnvironment(credentials, { tableName: 'ignored', dynamodbEndpoint: 'http://127.0.0.1:1', notifyBaseUrl: 'https://pay.example.com', secretFile: '/nonexistent/secret.json' });
  const out = mkdtempSync(join(tmpdir(), 'paynow-package-'));
  execFileSync(process.execPath, [require.resolve('serverless/bin/serverless.js'), 'package', '--package', out], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, ...env, SLS_TELEMETRY_DISABLED: '1', ESBUILD_WORK_FOLDER: '.esbuild-test-package' },
    stdio: 'pipe',
  });
  const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
  expect(zips).toContain('payOrder.zip');
  const listing = execFileSync('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print("\\n".join(z.namelist())); [print(z.read(n).decode()) for n in z.namelist() if n.endswith(".mjs")]', join(out, 'payOrder.zip')], { maxBuffer: 64 * 1024 * 1024 }).toString();
  expect(listing).toContain('functions/payOrder/handler.mjs');
  expect(listing).not.toMatch(/dynalite|leveldown|scripts\/sandbox/);
  expect(listing).not.toContain(credentials.wechat.apiv3_key);
  expect(statSync(join(out, 'payOrder.zip')).size).toBeLessThan(3 * 1024 * 1024);
  const template = readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8');
  expect(template).toContain('"open-attempts"');
}, 60_000);
