// `zipper ablate status <study>`: every shared stage's and every cell's state, from the stages' own
// records (record.ts) and, for jobs still queued or running, from SLURM's queue.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type QueuedJob, queue, readSubmission } from './slurm.js';
import { readRecord } from './record.js';
import { buildGraph, type Stage } from './stages.js';
import type { Study } from './study.js';
import { isCompleteFile } from './tables.js';

export type State = 'done' | 'running' | 'pending' | 'failed' | 'cancelled' | 'not run';

export interface StageStatus {
  stage: string;
  state: State;
  job?: string;
  log?: string;
  detail?: string;
}

export interface CellStatus {
  table: string;
  cell: string;
  state: State;
  /** The stage that decides the cell's state (the first not done). */
  stage?: StageStatus;
  run: string;
}

export interface StudyStatus {
  study: string;
  shared: StageStatus[];
  cells: CellStatus[];
  /** The tables' job (SLURM), while it is queued or running; null once it has ended. */
  tables?: { job: string; state: string } | null;
  /** The tables: complete, partial (some cells missing), or not written yet. */
  /** The newest table: complete, partial (some cells missing), or none yet. */
  results: 'complete' | 'partial' | 'none';
  /** The study file, for the hints. */
  file: string;
  submitted?: string;
}

/** The log's last line: a failed `zipper` command's error message. */
function lastLine(log: string): string {
  try {
    return readFileSync(log, 'utf8').trimEnd().split('\n').pop()!.slice(0, 300);
  } catch {
    return '(no log)';
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function stageStatus(s: Stage, q: Map<string, QueuedJob> | undefined): StageStatus {
  if (s.done()) return { stage: s.id, state: 'done' };
  const r = readRecord(s);
  if (!r) return { stage: s.id, state: 'not run' };
  const base = { stage: s.id, job: r.job, log: r.log };
  switch (r.state) {
    case 'done': // a record from before the stage's output was removed
      return { ...base, state: 'not run', detail: 'its output is gone' };
    case 'failed':
      return { ...base, state: 'failed', detail: `exit ${r.exit_code ?? r.signal ?? '?'}${r.log ? `: ${lastLine(r.log)}` : ''}` };
    case 'cancelled':
    case 'skipped':
      return { ...base, state: 'cancelled', detail: r.reason };
  }
  // Queued or running: ask the scheduler, or (local) whether the process is still there.
  if (r.executor === 'slurm') {
    const j = r.job ? q?.get(r.job) : undefined;
    if (!q) return { ...base, state: r.state === 'queued' ? 'pending' : 'running', detail: 'squeue not available: as last recorded' };
    if (j) return j.state === 'PENDING' ? { ...base, state: 'pending', detail: j.reason } : { ...base, state: 'running', detail: `${j.state === 'RUNNING' ? '' : `${j.state.toLowerCase()} `}on ${j.node}` };
    return r.state === 'queued'
      ? { ...base, state: 'cancelled', detail: `job ${r.job} left the queue without starting (a stage it waits for failed, or it was cancelled)` }
      : { ...base, state: 'failed', detail: `job ${r.job} ended without recording an outcome (killed: time limit, memory or node failure?)` };
  }
  if (r.host === hostname() && alive(r.pid)) return { ...base, state: 'running', detail: `pid ${r.pid}` };
  return { ...base, state: 'failed', detail: 'stopped without recording an outcome (the runner was killed?)' };
}

/** A cell is its stages: the first that is failed, cancelled, running, pending or not run decides. */
const ORDER: State[] = ['failed', 'cancelled', 'running', 'pending', 'not run'];

export function studyStatus(study: Study): StudyStatus {
  const graph = buildGraph(study);
  const sub = readSubmission(study);
  let q: Map<string, QueuedJob> | undefined;
  if (sub) {
    try {
      q = queue();
    } catch {
      q = undefined; // not on a SLURM machine: the records alone
    }
  }
  const cellStages = new Set(graph.cells.flatMap((c) => [c.fuse, c.asr, c.tts]).filter((s) => s !== undefined).map((s) => s.id));
  const shared = graph.stages.filter((s) => !cellStages.has(s.id)).map((s) => stageStatus(s, q));
  const cells = graph.cells.map((c): CellStatus => {
    const st = [c.fuse, c.asr, c.tts].filter((s) => s !== undefined).map((s) => stageStatus(s, q));
    const first = ORDER.map((o) => st.find((x) => x.state === o)).find((x) => x !== undefined);
    return { table: c.table, cell: c.label, state: first?.state ?? 'done', stage: first, run: c.fuse.dir };
  });
  // The tables job is one job (never an array): in the queue, or ended.
  const t = sub?.jobs.find((j) => j.key === 'tables');
  const live = t ? q?.get(t.job) : undefined;
  const tables = sub ? (t && live ? { job: t.job, state: live.state.toLowerCase() } : null) : undefined;
  const dateOf = (f: string) => (existsSync(join(study.results, f)) ? (JSON.parse(readFileSync(join(study.results, f), 'utf8')) as { date: string }).date : undefined);
  const full = dateOf('results.json');
  const part = dateOf('results.partial.json');
  const results = part && (!full || part > full) ? 'partial' : full ? (isCompleteFile(join(study.results, 'results.json')) ? 'complete' : 'partial') : 'none';
  return { study: study.cfg.name, file: study.file, shared, cells, tables, results, submitted: sub?.date };
}

export function formatStatus(s: StudyStatus): string {
  const count = (st: State) => s.cells.filter((c) => c.state === st).length;
  const counts = (['done', 'running', 'pending', 'failed', 'cancelled', 'not run'] as State[]).filter((st) => count(st)).map((st) => `${count(st)} ${st}`);
  const out = [`study ${s.study}: ${s.cells.length} cells: ${counts.join(', ')}${s.submitted ? ` (SLURM submission of ${s.submitted})` : ''}`];
  const row = (name: string, state: State, st?: StageStatus, showStage = false) =>
    [`  ${name.padEnd(26)} ${state.padEnd(10)}`, showStage && st ? ` ${st.stage}` : '', st?.job ? ` job ${st.job}` : '', st?.detail ? `  ${st.detail}` : '', state !== 'done' && st?.log ? `\n  ${''.padEnd(37)}log ${st.log}` : ''].join('');
  out.push('shared stages', ...s.shared.map((st) => row(st.stage, st.state, st)));
  // A cell not done names the stage that decides its state.
  out.push('cells', ...s.cells.map((c) => row(`${c.table}/${c.cell}`, c.state, c.state === 'done' ? undefined : c.stage, true)));
  if (s.tables) out.push(`tables: job ${s.tables.job} ${s.tables.state}`);
  out.push(`results: ${s.results === 'none' ? 'no table yet' : s.results === 'partial' ? 'the newest table is partial (some cells were missing)' : 'complete'}`);
  // Every cell done and nothing left to write the table (the study changed since its last table).
  if (s.results !== 'complete' && !s.tables && s.cells.every((c) => c.state === 'done')) out.push(`every cell is done: \`zipper ablate ${s.file} --tables-only\` writes the table`);
  return out.join('\n') + '\n';
}
