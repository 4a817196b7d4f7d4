// Each stage's own record of what happened to it, kept on the shared filesystem beside its output (a
// cell's stages under status/ in the cell's run directory). Schedulers forget finished jobs (SLURM
// without accounting drops them after MinJobAge, 300 s by default), so `zipper ablate status` and the
// results tables read these records, not the scheduler's memory. What is done is decided by the
// stage's own output (Stage.done), never by a record.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../util/fs.js';
import { isBad, topoOrder, type Outcome } from './executor.js';
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

/**
 * What the records say of every stage not done, for tables made after the fact (the SLURM tables
 * job, --tables-only): failed, cancelled or skipped as recorded, and skipped when a stage it needs
 * ended badly (a scheduler cancels jobs whose dependency failed before they write anything).
 * Stages queued or running, or never run, have no outcome: the tables call them missing.
 */
export function recordedOutcomes(stages: readonly Stage[]): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const s of topoOrder(stages)) {
    if (s.done()) continue;
    const r = readRecord(s);
    if (r?.state === 'failed') out.set(s.id, { state: 'failed', log: r.log ?? '', code: r.exit_code ?? null, signal: r.signal ?? null });
    else if (r?.state === 'cancelled') out.set(s.id, { state: 'cancelled', log: r.log ?? '', reason: r.reason ?? 'cancelled' });
    else if (r?.state === 'skipped') out.set(s.id, { state: 'skipped', reason: r.reason ?? 'skipped' });
    else {
      const bad = s.deps.find((d) => isBad(out.get(d)));
      if (bad) out.set(s.id, { state: 'skipped', reason: `${bad} did not finish` });
    }
  }
  return out;
}
