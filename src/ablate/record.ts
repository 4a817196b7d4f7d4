// Each stage's own record of what happened to it, kept on the shared filesystem beside its output (a
// cell's stages under status/ in the cell's run directory). Schedulers forget finished jobs (SLURM
// without accounting drops them after MinJobAge, 300 s by default), so `zipper ablate status`, the
// results tables and a resubmission read these records, not the scheduler's memory.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../util/fs.js';
import type { Outcome } from './executor.js';
import type { Stage } from './stages.js';

export type RecordState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'skipped';

export interface StageRecord {
  stage: string;
  state: RecordState;
  /** Which executor wrote it: local or slurm. */
  executor: string;
  /** The scheduler's job id (SLURM: 123, or 123_4 for an array task). */
  job?: string;
  host?: string;
  pid?: number;
  /** The stage's log: the exact command, then its output. */
  log?: string;
  submitted?: string;
  started?: string;
  finished?: string;
  exit_code?: number | null;
  signal?: string | null;
  /** Why it was skipped or cancelled. */
  reason?: string;
}

export function readRecord(stage: Stage): StageRecord | undefined {
  if (!existsSync(stage.record)) return undefined;
  try {
    return JSON.parse(readFileSync(stage.record, 'utf8')) as StageRecord;
  } catch {
    // Written atomically, so unreadable means someone else's file: report it as absent.
    return undefined;
  }
}

/** Synchronous and atomic: records are written from exit and signal paths too. */
export function writeRecord(stage: Stage, r: Omit<StageRecord, 'stage' | 'host'> & { host?: string }): StageRecord {
  const rec: StageRecord = { stage: stage.id, host: hostname(), ...r };
  mkdirSync(dirname(stage.record), { recursive: true });
  writeFileAtomicSync(stage.record, JSON.stringify(rec, null, 2) + '\n');
  return rec;
}

/** Updates fields of the stage's record (or starts one). */
export function updateRecord(stage: Stage, patch: Partial<StageRecord> & { state: RecordState; executor: string }): StageRecord {
  return writeRecord(stage, { ...readRecord(stage), ...patch });
}

/**
 * What a finished record says for the results tables: a stage that is not done and whose record
 * ended badly. Queued and running records say nothing yet (the stage is missing, not failed).
 */
export function outcomeOfRecord(stage: Stage): Outcome | undefined {
  if (stage.done()) return undefined;
  const r = readRecord(stage);
  if (!r) return undefined;
  if (r.state === 'failed') return { state: 'failed', log: r.log ?? '', code: r.exit_code ?? null, signal: r.signal ?? null };
  if (r.state === 'cancelled') return { state: 'cancelled', log: r.log ?? '', reason: r.reason ?? 'cancelled' };
  if (r.state === 'skipped') return { state: 'skipped', reason: r.reason ?? 'skipped' };
  return undefined;
}
