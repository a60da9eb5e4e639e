/**
 * npm run secret:check -- FILE.json [--jwt RS256|ES256|EdDSA] [--webhook]
 * Checks a stage secret document against the schema the functions use (lib/secrets/stageSecret.ts)
 * before anyone uploads it, and against what the stage's settings need from it: `--jwt ALG` for a stage
 * with `appTokens: jwt` and `jwtAlgorithm: ALG`, `--webhook` for one with a shop webhook URL (the
 * functions refuse a version without those, lib/secrets/stageNeeds.ts). Prints what it found by field
 * and identifier, never a key. Exit 0: ready to upload; 1: invalid; 2: usage.
 */
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../lib/config';
import { checkStageNeeds, type StageNeeds } from '../lib/secrets/stageNeeds';
import { parseStageSecret, SecretError, unknownStageSecretFields } from '../lib/secrets/stageSecret';

export interface SecretCheck {
  ok: boolean;
  lines: string[];
}

export async function checkSecretFile(file: string, needs: StageNeeds = { webhookSecret: false }): Promise<SecretCheck> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return { ok: false, lines: [`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`] };
  }
  try {
    const secret = checkStageNeeds(parseStageSecret(text, file), needs, file);
    const unknown = unknownStageSecretFields(text);
    const { wechat, alipay, shop } = secret;
    const lines = [
      `${file}: ${unknown.length ? 'INVALID' : 'ok'}`,
      `  wechat: merchant certificate serial ${wechat.merchantSerial}, its private key matches, API v3 key of 32 characters`,
      `  wechat: answers verified with ${[...wechat.payPublicKeys.map((k) => `public key ${k.id}`), ...(wechat.platformCertificatesPem ? [`${wechat.platformCertificatesPem.match(/BEGIN CERTIFICATE/g)?.length} platform certificate(s)`] : [])].join(' and ')}`,
      `  alipay: app private key (${alipay.appPrivateKeyPem.includes('BEGIN RSA PRIVATE KEY') ? 'PKCS#1' : 'PKCS#8'}) and Alipay public key readable`,
      `  shop: ${shop.webhookSecret ? `webhook secret of ${shop.webhookSecret.length} characters${shop.webhookPreviousSecret ? ' (and the previous one: deliveries signed with both)' : ''}` : 'no webhook_secret'}; ${shop.jwtPublicKeyPems ? `JWT public key${shop.jwtPublicKeyPems.length > 1 ? 's' : ''} (${shop.jwtPublicKeyPems.map(describeKey).join('; ')})` : 'no jwt_public_key (APP_TOKENS=jwt needs one)'}`,
      ...unknown.map((field) => `  unknown field ${field}: a typo? the functions would ignore it`),
    ];
    return { ok: unknown.length === 0, lines };
  } catch (error) {
    if (error instanceof SecretError) return { ok: false, lines: [error.message.replace(/: /, ':\n  ').replace(/; /g, '\n  ')] };
    throw error;
  }
}

/** `rsa 2048 bits`, `ec prime256v1`, `ed25519`: enough to match it with JWT_ALGORITHM. */
function describeKey(pem: string): string {
  const key = createPublicKey(pem);
  const details = key.asymmetricKeyDetails;
  return [key.asymmetricKeyType, details?.modulusLength && `${details.modulusLength} bits`, details?.namedCurve].filter(Boolean).join(' ');
}

const USAGE = `usage: npm run secret:check -- FILE.json [--jwt ${JWT_ALGORITHMS.join('|')}] [--webhook]`;

async function main(): Promise<void> {
  let file: string | undefined;
  let needs: StageNeeds;
  try {
    const { values, positionals } = parseArgs({ options: { jwt: { type: 'string' }, webhook: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length !== 1 || (values.jwt !== undefined && !JWT_ALGORITHMS.includes(values.jwt as JwtAlgorithm))) throw new Error(USAGE);
    file = positionals[0];
    needs = { ...(values.jwt && { jwtAlgorithm: values.jwt as JwtAlgorithm }), webhookSecret: values.webhook === true };
  } catch {
    console.error(USAGE);
    process.exit(2);
  }
  const { ok, lines } = await checkSecretFile(file, needs);
  console.log(lines.join('\n'));
  process.exit(ok ? 0 : 1);
}

if (require.main === module) void main();
