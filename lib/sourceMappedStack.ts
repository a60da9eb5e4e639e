import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Stack traces that name the TypeScript file and line, at no cold-start cost. The deployed chunks are
 * minified (`lambda.mjs:1:48213`); Node's --enable-source-maps would read and index every chunk's map
 * as the chunk loads, on every cold start (10 to 19 ms of payOrder's, README "Bundles and cold
 * starts"). Instead a chunk's map (`<chunk>.mjs.map`, shipped beside it) is read the first time a
 * logged error has a frame in it. Frames with no map beside their file (Node's own, the tests'
 * TypeScript) are left as they are; function names stay the minified ones.
 */
const maps = new Map<string, SourceMap | null>();

function sourceMapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return map;
}

// `file:///var/task/functions/payOrder/lambda.mjs:1:48213` or `/var/task/.../chunk-X.mjs:1:12`
const FRAME_LOCATION = /((?:file:\/\/)?\/[^\s()]+?\.m?js):(\d+):(\d+)/g;

/** `at Tc (lib/app.ts:74:3)` for `at Tc (file:///var/task/functions/payOrder/lambda.mjs:6:1234)`. */
export function sourceMappedStack(stack: string): string {
  // With --enable-source-maps (the tests, a local run) Node has mapped it already.
  if (process.sourceMapsEnabled) return stack;
  return stack.replace(FRAME_LOCATION, (location, file: string, line: string, column: string) => {
    const path = file.startsWith('file:') ? fileURLToPath(file) : file;
    const entry = sourceMapOf(path)?.findEntry(Number(line) - 1, Number(column) - 1);
    // findEntry gives the nearest mapping before the position, even from an earlier line: not this code.
    if (!entry || !('originalSource' in entry) || !entry.originalSource || entry.generatedLine !== Number(line) - 1) return location;
    // The map's sources are relative to the chunk (`../../lib/app.ts`): the repository path reads best.
    const source = entry.originalSource.replace(/^(?:\.\.\/)+/, '');
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });
}

/** The same error with its stack mapped: for errors a runtime prints, not our logger (a failed cold start). */
export function withSourceMappedStack<T>(error: T): T {
  if (error instanceof Error && typeof error.stack === 'string') error.stack = sourceMappedStack(error.stack);
  return error;
}
