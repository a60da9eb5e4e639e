/**
 * Stack frames of the minified deployed chunks, mapped to the TypeScript source from the map shipped
 * beside each chunk, without --enable-source-maps. A chunk is built here the way serverless.yml builds
 * the functions (esbuild, minified ES module, linked map without sources).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describeError } from '../../lib/log';
import { sourceMappedStack, withSourceMappedStack } from '../../lib/sourceMappedStack';

// As deployed: no --enable-source-maps (jest may run with Node's own mapping on).
const nodeMapped = process.sourceMapsEnabled;
beforeAll(() => process.setSourceMapsEnabled(false));
afterAll(() => process.setSourceMapsEnabled(nodeMapped));

let dir: string;
let chunk: string;
/** Where the bundle has the `throw`, 1-based as in a stack frame. */
let throwAt: { line: number; column: number };

afterAll(() => rm(dir, { recursive: true, force: true }));
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'paynow-stack-'));
  await writeFile(
    join(dir, 'refundCase.ts'),
    [
      'export function settle(amountFen: number): number {',
      '  if (amountFen < 0) {',
      "    throw new RangeError('negative amount');",
      '  }',
      '  return amountFen;',
      '}',
      '',
    ].join('\n'),
  );
  await build({
    entryPoints: [join(dir, 'refundCase.ts')],
    outfile: join(dir, 'chunk-ABC.mjs'),
    bundle: true,
    minify: true,
    format: 'esm',
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'error',
  });
  chunk = join(dir, 'chunk-ABC.mjs');
  const lines = (await readFile(chunk, 'utf8')).split('\n');
  const line = lines.findIndex((l) => l.includes('new RangeError'));
  throwAt = { line: line + 1, column: lines[line].indexOf('new RangeError') + 1 };
});

const frame = (location: string) => `RangeError: negative amount\n    at Ze (${location})\n    at node:internal/process/task_queues:95:5`;

describe('a stack from a deployed chunk', () => {
  it('names the TypeScript file, line and column for a file:// frame and for a path frame', () => {
    for (const location of [`${pathToFileURL(chunk).href}:${throwAt.line}:${throwAt.column}`, `${chunk}:${throwAt.line}:${throwAt.column}`]) {
      expect(sourceMappedStack(frame(location))).toBe(frame('refundCase.ts:3:11'));
    }
  });

  it("keeps frames it cannot map as they are: Node's own, a file with no map beside it, a position outside the map", async () => {
    const unmapped = join(dir, 'plain.mjs');
    await writeFile(unmapped, 'export {};\n');
    for (const location of [`${unmapped}:1:1`, `${join(dir, 'missing.mjs')}:3:7`, `${chunk}:999:1`]) {
      expect(sourceMappedStack(frame(location))).toBe(frame(location));
    }
  });

  it('is left alone when Node maps stacks itself (--enable-source-maps)', () => {
    const location = `${chunk}:${throwAt.line}:${throwAt.column}`;
    process.setSourceMapsEnabled(true);
    try {
      expect(sourceMappedStack(frame(location))).toBe(frame(location));
    } finally {
      process.setSourceMapsEnabled(false);
    }
  });

  it('is mapped in a logged error and its cause, and on an error a runtime prints', () => {
    const location = `${chunk}:${throwAt.line}:${throwAt.column}`;
    const cause = Object.assign(new RangeError('negative amount'), { stack: frame(location) });
    const logged = describeError(Object.assign(new Error('refund failed', { cause }), { stack: `Error: refund failed\n    at Qa (${location})` }));
    expect(logged.stack).toBe('Error: refund failed\n    at Qa (refundCase.ts:3:11)');
    expect(logged.cause?.stack).toBe(frame('refundCase.ts:3:11'));
    expect(withSourceMappedStack(Object.assign(new Error('x'), { stack: frame(location) })).stack).toBe(frame('refundCase.ts:3:11'));
    expect(withSourceMappedStack('not an error')).toBe('not an error');
  });
});
