// Logging for runs: every record as a JSON line in the run's log.jsonl (for machines, written
// synchronously so a crash loses nothing) and a short line on stderr for people, e.g.
//   [12:03:04] train step 100 loss 3.213 lr 1e-3 tokens_per_s 51234
// The stderr line holds the message and the record's scalar fields; nested objects and arrays are
// only in the JSONL. Human lines go through printAboveProgress so they never garble a progress bar.
import { pino } from 'pino';
import { formatValue, printAboveProgress } from './progress.js';

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** The JSONL file (created with its directory, appended to on resume); none: stderr only. */
  jsonlPath?: string;
  /** pino level name: trace, debug, info (default), warn, error, fatal, silent. */
  level?: string;
  /** Only warnings and errors on stderr; the JSONL file still gets everything at `level`. */
  quiet?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const humanLevel = opts.quiet ? higherOf(level, 'warn') : level;
  const streams: pino.StreamEntry[] = [{ level: humanLevel as pino.Level, stream: { write: writeHuman } }];
  if (opts.jsonlPath !== undefined) {
    const file = pino.destination({ dest: opts.jsonlPath, sync: true, append: true, mkdir: true });
    streams.push({ level: level as pino.Level, stream: file });
  }
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

function higherOf(a: string, b: string): string {
  const values = pino.levels.values;
  return (values[a] ?? 0) >= (values[b] ?? 0) ? a : b;
}

const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function writeHuman(line: string): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    printAboveProgress(line.trimEnd());
    return;
  }
  printAboveProgress(humanLine(rec));
}

/** `[HH:MM:SS] LEVEL msg key value ...` (the level only when it is not info). */
export function humanLine(rec: Record<string, unknown>): string {
  const time = typeof rec.time === 'string' || typeof rec.time === 'number' ? new Date(rec.time) : new Date();
  const parts = [`[${time.toTimeString().slice(0, 8)}]`];
  const label = typeof rec.level === 'number' ? pino.levels.labels[rec.level] : undefined;
  if (label && label !== 'info') parts.push(label.toUpperCase());
  if (typeof rec.msg === 'string' && rec.msg) parts.push(rec.msg);
  for (const [key, value] of Object.entries(rec)) {
    if (OMIT.has(key)) continue;
    if (key === 'err' && value && typeof value === 'object' && 'message' in value) parts.push(`error: ${formatValue(value.message)}`);
    else if (value === null || typeof value !== 'object') parts.push(`${key} ${formatValue(value)}`);
  }
  return parts.join(' ');
}
