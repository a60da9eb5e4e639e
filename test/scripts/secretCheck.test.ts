import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxStageSecret, writeLocalSecret } from '../../scripts/local/environment';
import { generateSandboxCredentials, type SandboxCredentials } from '../../scripts/sandbox/credentials';
import { checkSecretFile } from '../../scripts/secretCheck';

let credentials: SandboxCredentials;
let dir: string;
beforeAll(async () => {
  credentials = await generateSandboxCredentials({ gatewayUrl: 'http://127.0.0.1:1' });
  dir = await mkdtemp(join(tmpdir(), 'paynow-secret-check-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('npm run secret:check', () => {
  it('passes a good document and says what it found, without a key', async () => {
    const file = await writeLocalSecret(credentials, dir);
    const { ok, lines } = await checkSecretFile(file);
    expect(ok).toBe(true);
    expect(lines.join('\n')).toContain(`public key ${credentials.wechat.platform_serial}`);
    expect(lines.join('\n')).not.toMatch(/BEGIN|MII/);
    expect(lines.join('\n')).not.toContain(credentials.wechat.apiv3_key);
  });

  it('describes the optional shop section by what it holds, never by its values', async () => {
    const file = join(dir, 'shop.json');
    const jwtKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' });
    await writeFile(file, JSON.stringify({ ...sandboxStageSecret(credentials), shop: { webhook_secret: 'w'.repeat(40), jwt_public_key: jwtKey } }));
    const { ok, lines } = await checkSecretFile(file);
    expect(ok).toBe(true);
    expect(lines).toContain('  shop: webhook secret of 40 characters; JWT public key (rsa 2048 bits)');
    expect(lines.join('\n')).not.toMatch(/wwww|BEGIN|MII/);
    const { lines: without } = await checkSecretFile(await writeLocalSecret(credentials, dir));
    expect(without.join('\n')).toMatch(/ {2}shop: .*; no jwt_public_key \(APP_TOKENS=jwt needs one\)/);
    await writeFile(
      file,
      JSON.stringify({ ...sandboxStageSecret(credentials), shop: { webhook_secret: 'w'.repeat(40), webhook_previous_secret: 'o'.repeat(32) } }),
    );
    const rotating = await checkSecretFile(file);
    expect(rotating.lines).toContainEqual(
      expect.stringMatching(/^ {2}shop: webhook secret of 40 characters \(and the previous one: deliveries signed with both\); /),
    );
    expect(rotating.lines.join('\n')).not.toMatch(/wwww|oooo/);
  });

  it("fails a document without what the stage's settings need (--jwt ALG, --webhook), naming the field and the setting", async () => {
    const file = join(dir, 'needs.json');
    const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' });
    await writeFile(file, JSON.stringify({ ...sandboxStageSecret(credentials), shop: { jwt_public_key: rsaKey } }));
    expect(await checkSecretFile(file, { jwtAlgorithm: 'RS256', webhookSecret: false })).toMatchObject({ ok: true });
    const es256 = await checkSecretFile(file, { jwtAlgorithm: 'ES256', webhookSecret: false });
    expect(es256.ok).toBe(false);
    expect(es256.lines.join(' ')).toContain('shop.jwt_public_key is not an EC key on P-256, which JWT_ALGORITHM ES256 needs');
    const webhook = await checkSecretFile(file, { webhookSecret: true });
    expect(webhook.ok).toBe(false);
    expect(webhook.lines.join(' ')).toContain('has no shop.webhook_secret, which SHOP_WEBHOOK_URL needs');
  });

  it('fails a document with a bad field or an unknown one, naming it', async () => {
    const document = sandboxStageSecret(credentials);
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ ...document, wechat: { ...document.wechat, apiv3_key: 'too-short-secret', apiV3Key: 'x' } }));
    const { ok, lines } = await checkSecretFile(file);
    expect(ok).toBe(false);
    expect(lines.join('\n')).toContain('wechat.apiv3_key: must be 32 characters');
    expect(lines.join('\n')).not.toContain('too-short-secret');

    await writeFile(file, JSON.stringify({ ...document, wechat: { ...document.wechat, apiV3Key: 'x' } }));
    const typo = await checkSecretFile(file);
    expect(typo.ok).toBe(false);
    expect(typo.lines.join('\n')).toContain('unknown field wechat.apiV3Key');
  });

  it('runs as a command with exit code 0 for a good file and 1 for a bad one', async () => {
    const good = await writeLocalSecret(credentials, dir);
    const run = (...args: string[]) => {
      try {
        return {
          status: 0,
          out: execFileSync(process.execPath, [require.resolve('tsx/cli'), 'scripts/secretCheck.ts', ...args], {
            cwd: join(__dirname, '..', '..'),
            stdio: 'pipe',
          }).toString(),
        };
      } catch (error) {
        const { status, stdout, stderr } = error as { status: number; stdout: Buffer; stderr: Buffer };
        return { status, out: `${stdout}${stderr}` };
      }
    };
    expect(run(good)).toMatchObject({ status: 0, out: expect.stringContaining(': ok') });
    expect(run(join(dir, 'missing.json'))).toMatchObject({ status: 1, out: expect.stringContaining('cannot be read (ENOENT)') });
    // The sandbox document has a webhook secret and no JWT key: a stage on JWTs cannot use it.
    expect(run(good, '--webhook')).toMatchObject({ status: 0, out: expect.stringContaining(': ok') });
    expect(run(good, '--webhook', '--jwt', 'EdDSA')).toMatchObject({ status: 1, out: expect.stringContaining('has no shop.jwt_public_key') });
    expect(run(good, '--jwt', 'HS256')).toMatchObject({ status: 2, out: expect.stringContaining('usage: npm run secret:check') });
    expect(run()).toMatchObject({ status: 2 });
  }, 30_000);
});
