export interface CapturedOutput {
  /** Every JSON line written (log lines and EMF metric lines). */
  lines: Record<string, unknown>[];
  /** Everything the functions wrote, as text. */
  text: string;
}

let capture: string[] | undefined;

/** A log or metric line, as Powertools writes them. */
const FUNCTION_OUTPUT = /^\{"(level|_aws)"/;

/** Keeps the functions' JSON lines out of the test run's output, or hands them to `captureOutput`. */
export function installOutputFilter(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      if (!FUNCTION_OUTPUT.test(text)) return write(chunk, ...rest);
      capture?.push(text);
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  }
}

/** Runs `work` and returns what the functions wrote: Powertools' log lines and the metrics' EMF lines. */
export async function captureOutput<T>(work: () => Promise<T>): Promise<CapturedOutput & { result: T }> {
  const chunks: string[] = [];
  capture = chunks;
  try {
    const result = await work();
    const text = chunks.join('');
    const lines = text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { result, lines, text };
  } finally {
    capture = undefined;
  }
}

/** The EMF lines of one metric. */
export function metricLines(lines: Record<string, unknown>[], name: string): Record<string, unknown>[] {
  return lines.filter((line) => typeof line[name] === 'number' && (line._aws as { CloudWatchMetrics?: unknown } | undefined)?.CloudWatchMetrics);
}
