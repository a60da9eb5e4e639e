type Fields = Record<string, string | number | boolean | undefined>;

/**
 * One JSON line per event, for CloudWatch. Callers pass named scalar fields only, never whole
 * objects, so a request, a config or a key cannot end up in a log by accident.
 */
function write(level: 'info' | 'warn' | 'error', message: string, fields: Fields = {}): void {
  if (process.env.LOG_LEVEL === 'silent') return;
  const line = JSON.stringify({ level, message, ...fields });
  if (level === 'info') console.log(line);
  else console.error(line);
}

export const log = {
  info: (message: string, fields?: Fields) => write('info', message, fields),
  warn: (message: string, fields?: Fields) => write('warn', message, fields),
  error: (message: string, fields?: Fields) => write('error', message, fields),
};
