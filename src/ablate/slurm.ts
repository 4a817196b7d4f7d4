// The SLURM executor: a study as jobs that mirror its stage graph, on a cluster with a filesystem
// shared by the submitting machine and the nodes. Each shared stage not done (corpus, tokens, towers,
// judge) is one job that waits (afterok) for the jobs of its inputs; the cells not done are one job
// array that waits for them, a task per cell running its fine-tuning and evaluations in order; a last
// job makes the results tables once the array has ended however it ended (afterany), so a failed cell
// gives a partial table instead of a job pending forever. Every job runs `zipper ablate run-stages`
// on a snapshot of the resolved study, which keeps each stage's record (record.ts) in its run
// directory: SLURM forgets finished jobs, and `zipper ablate status` reads the records.
// Facts this relies on (Slurm 22.05, Debian's): ../shared/CLUSTER.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatConfig } from '../config/load.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { topoOrder, type Executor, type ExecutorEvents, type Outcome } from './executor.js';
import { shellQuote, zipperMain } from './launch.js';
import { readRecord, writeRecord, type StageRecord } from './record.js';
import type { Stage } from './stages.js';
import type { SlurmSettings, Study } from './study.js';

/** One sbatch submission: a shared stage, the cells' array, or the tables. */
export interface PlannedJob {
  key: string;
  /** Stage ids a task runs, in order: one list, or one per array task. */
  tasks: string[][];
  array: boolean;
  /** Jobs (by key) it waits for: afterok for stages, afterany for the tables. */
  after: { kind: 'afterok' | 'afterany'; keys: string[] };
  script: string;
  scriptText: string;
}

/** What `--executor slurm` submitted, kept in <results>/slurm/submission.json. */
export interface Submission {
  study: string;
  date: string;
  command: string;
  snapshot: string;
  jobs: { key: string; job: string; array: boolean; tasks: string[][]; dependency: string | null; script: string }[];
}

export interface Partition {
  name: string;
  isDefault: boolean;
  up: boolean;
  /** The largest node's CPUs and memory (MB), and the time limit in minutes (Infinity: none). */
  cpus: number;
  memMb: number;
  maxMinutes: number;
}

/** A job in squeue: state (PENDING, RUNNING, ...), why it waits, and where it runs. */
export interface QueuedJob {
  id: string;
  arrayId: string;
  state: string;
  reason: string;
  node: string;
}

const slurmDir = (study: Study) => join(study.results, 'slurm');
export const submissionFile = (study: Study) => join(slurmDir(study), 'submission.json');

/** Runs a SLURM client command; a missing command or a refusal is an error naming it. */
function slurmCommand(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`--executor slurm: no ${cmd} on the PATH: run on a machine with SLURM's client commands, or use --executor local`);
  }
  if (r.status !== 0) throw new Error(`${cmd} ${args.map(shellQuote).join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout;
}

/** Minutes in a SLURM time ("30", "1:30:00", "2-12", "2-12:00:00", "infinite"). */
export function slurmMinutes(t: string): number {
  if (/^(infinite|unlimited)$/i.test(t)) return Infinity;
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t.trim());
  if (!m) throw new Error(`time "${t}": not a SLURM time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)`);
  const [d, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  if (d !== undefined) return d * 1440 + a! * 60 + (b ?? 0) + (c ?? 0) / 60; // D-HH[:MM[:SS]]
  if (c !== undefined) return a! * 60 + b! + c / 60; // HH:MM:SS
  if (b !== undefined) return a! + b / 60; // MM:SS
  return a!; // minutes
}

/** Megabytes in an sbatch --mem value ("4000", "4G"). */
export function slurmMegabytes(m: string): number {
  const x = /^(\d+)([KMGT]?)$/i.exec(m);
  if (!x) throw new Error(`mem "${m}": expected a number of megabytes, or with K, M, G or T`);
  const scale = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024, '': 1 }[x[2]!.toUpperCase() as 'K'];
  return Number(x[1]) * scale;
}

export function partitions(): Partition[] {
  const byName = new Map<string, Partition>();
  for (const line of slurmCommand('sinfo', ['-h', '-o', '%P|%a|%c|%m|%l']).split('\n').filter(Boolean)) {
    const [p, avail, cpus, mem, limit] = line.split('|');
    const name = p!.replace(/\*$/, '');
    const prev = byName.get(name);
    const cur: Partition = { name, isDefault: p!.endsWith('*'), up: avail === 'up', cpus: parseInt(cpus!, 10), memMb: parseInt(mem!, 10), maxMinutes: slurmMinutes(limit!) };
    byName.set(name, prev ? { ...prev, cpus: Math.max(prev.cpus, cur.cpus), memMb: Math.max(prev.memMb, cur.memMb) } : cur);
  }
  return [...byName.values()];
}

/** Every job in the queue, array tasks one per line. */
export function queue(): Map<string, QueuedJob> {
  const out = new Map<string, QueuedJob>();
  for (const line of slurmCommand('squeue', ['-h', '-r', '-o', '%i|%F|%T|%r|%N']).split('\n').filter(Boolean)) {
    const [id, arrayId, state, reason, node] = line.split('|');
    out.set(id!, { id: id!, arrayId: arrayId!, state: state!, reason: reason!, node: node ?? '' });
  }
  return out;
}

/** The submission's jobs still in the queue (by their base job id). */
export function inFlight(sub: Submission, q: Map<string, QueuedJob>): string[] {
  const ids = new Set(sub.jobs.map((j) => j.job));
  return [...new Set([...q.values()].filter((j) => ids.has(j.arrayId) || ids.has(j.id)).map((j) => j.arrayId))];
}

/**
 * Refuses to run a study whose SLURM jobs are still queued or running: two runners would write the
 * same stage folders. Without SLURM's client commands here (a study submitted from another
 * machine), `needQueue` decides: the SLURM executor needs them anyway; the local one goes on.
 */
export function assertNoJobsQueued(study: Study, needQueue: boolean): void {
  const prev = readSubmission(study);
  if (!prev) return;
  let q: Map<string, QueuedJob>;
  try {
    q = queue();
  } catch (err) {
    if (needQueue) throw err;
    return;
  }
  const live = inFlight(prev, q);
  if (live.length) throw new Error(`study ${study.cfg.name} still has jobs in the queue (${live.join(', ')}) from ${prev.date}: follow them with \`zipper ablate status ${study.file}\`, or \`zipper ablate cancel ${study.file}\` before running it again`);
}

export function readSubmission(study: Study): Submission | undefined {
  const f = submissionFile(study);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Submission) : undefined;
}

/** The request against the partition: refused here, before anything is submitted. */
export function checkRequest(s: SlurmSettings, parts: Partition[]): Partition {
  const names = parts.map((p) => p.name).join(', ');
  const part = s.partition ? parts.find((p) => p.name === s.partition) : parts.find((p) => p.isDefault);
  if (!part) throw new Error(s.partition ? `slurm.partition ${s.partition}: no such partition on this cluster (partitions: ${names})` : `the cluster has no default partition: set slurm.partition or --partition (partitions: ${names})`);
  if (!part.up) throw new Error(`partition ${part.name} is not up`);
  if (s.cpus_per_task > part.cpus) throw new Error(`slurm.cpus_per_task ${s.cpus_per_task}: the largest node in partition ${part.name} has ${part.cpus} CPUs; the job could never run`);
  if (s.mem !== undefined && slurmMegabytes(s.mem) > part.memMb) throw new Error(`slurm.mem ${s.mem}: the largest node in partition ${part.name} has ${part.memMb} MB; the job could never run`);
  if (s.time !== undefined) {
    let minutes: number;
    try {
      minutes = slurmMinutes(s.time);
    } catch (err) {
      throw new Error(`slurm.time: ${(err as Error).message}`);
    }
    if (minutes > part.maxMinutes) throw new Error(`slurm.time ${s.time}: partition ${part.name} allows at most ${part.maxMinutes} minutes`);
  }
  return part;
}

const CELL_KINDS = new Set(['fuse', 'eval_asr', 'eval_tts']);

/**
 * The jobs for the stages not done: shared stages one job each, cells one array (a task per cell:
 * its fine-tuning, then its evaluations), the tables last. Empty when everything is done.
 */
export function planJobs(study: Study, stages: readonly Stage[], o: { command: string; snapshot: string }): PlannedJob[] {
  const todo = topoOrder(stages).filter((s) => !s.done());
  if (!todo.length) return [];
  const byId = new Map(stages.map((s) => [s.id, s]));
  const todoIds = new Set(todo.map((s) => s.id));
  const dir = slurmDir(study);
  const s = study.cfg.slurm;
  const node = process.execPath;
  const zipper = `${shellQuote(node)} ${shellQuote(zipperMain())}`;
  const header = (name: string, out: string, extra: string[]) =>
    [
      '#!/bin/bash',
      `# zipper ablate ${study.cfg.name}: ${name} (written by \`${o.command}\`; dependencies are given to sbatch)`,
      `#SBATCH --job-name=zipper-${study.cfg.name}-${name}`,
      `#SBATCH --output=${join(dir, 'logs', out)}`,
      `#SBATCH --chdir=${process.cwd()}`,
      ...(s.partition ? [`#SBATCH --partition=${s.partition}`] : []),
      // A job whose afterok dependency failed is cancelled, not left pending forever (CLUSTER.md).
      '#SBATCH --kill-on-invalid-dep=yes',
      ...extra,
      ...(s.time ? [`#SBATCH --time=${s.time}`] : []),
      ...s.extra_args.map((a) => `#SBATCH ${a}`),
      'set -eu',
    ].join('\n');
  const resources = [`#SBATCH --cpus-per-task=${s.cpus_per_task}`, ...(s.mem ? [`#SBATCH --mem=${s.mem}`] : [])];
  const jobs: PlannedJob[] = [];
  // A shared stage not done is a job of its own, keyed by the stage id.
  const sharedJob = (id: string) => todoIds.has(id) && !CELL_KINDS.has(byId.get(id)!.kind);
  for (const st of todo.filter((x) => !CELL_KINDS.has(x.kind))) {
    const text = `${header(st.id, '%x-%j.out', resources)}\nexec ${zipper} ablate run-stages ${shellQuote(o.snapshot)} ${st.id}\n`;
    jobs.push({ key: st.id, tasks: [[st.id]], array: false, after: { kind: 'afterok', keys: st.deps.filter(sharedJob) }, script: join(dir, `${st.id}.sbatch`), scriptText: text });
  }
  // Cells: a fine-tuning stage with the evaluations that read it; a cell whose fine-tuning is done
  // may still have an evaluation to run.
  const cells = new Map<string, string[]>();
  for (const st of todo.filter((x) => CELL_KINDS.has(x.kind))) {
    const fuse = st.kind === 'fuse' ? st.id : st.deps.find((d) => byId.get(d)?.kind === 'fuse')!;
    cells.set(fuse, [...(cells.get(fuse) ?? []), st.id]);
  }
  if (cells.size) {
    const tasks = [...cells.values()];
    const waits = [...new Set(tasks.flat().flatMap((id) => byId.get(id)!.deps).filter(sharedJob))];
    const array = `#SBATCH --array=0-${tasks.length - 1}${s.max_running ? `%${s.max_running}` : ''}`;
    const list = tasks.map((t) => `  ${shellQuote(t.join(' '))}`).join('\n');
    const text = `${header('cells', '%x-%A_%a.out', [...resources, array])}\n# One cell per task: its fine-tuning, then its evaluations.\ncells=(\n${list}\n)\nexec ${zipper} ablate run-stages ${shellQuote(o.snapshot)} \${cells[$SLURM_ARRAY_TASK_ID]}\n`;
    jobs.push({ key: 'cells', tasks, array: true, after: { kind: 'afterok', keys: waits }, script: join(dir, 'cells.sbatch'), scriptText: text });
  }
  // The tables wait for everything to end, well or not, and write a partial table if need be.
  const last = cells.size ? ['cells'] : jobs.map((j) => j.key);
  const tablesText = `${header('tables', '%x-%j.out', ['#SBATCH --cpus-per-task=1'])}\nexec ${zipper} ablate ${shellQuote(o.snapshot)} --tables-only --as-command ${shellQuote(o.command)}\n`;
  jobs.push({ key: 'tables', tasks: [], array: false, after: { kind: 'afterany', keys: last }, script: join(dir, 'tables.sbatch'), scriptText: tablesText });
  return jobs;
}

/** The study as resolved (every path absolute, flags applied): what the jobs read, whatever is edited later. */
export function writeSnapshot(study: Study): string {
  const f = join(slurmDir(study), 'study.yaml');
  mkdirSync(slurmDir(study), { recursive: true });
  writeFileAtomicSync(f, `# ${study.file} as resolved for SLURM jobs by zipper ablate; do not edit (resubmit instead)\n${formatConfig({ ...study.cfg, results: study.results })}`);
  return f;
}

/**
 * sbatch's arguments for a planned job, given the ids of the jobs it waits for. Submitted held: the
 * jobs are released together once every stage's record says queued (a job that started at once
 * would race that write).
 */
export function sbatchArgs(j: PlannedJob, jobId: (key: string) => string): string[] {
  const dependency = j.after.keys.length ? [`--dependency=${j.after.kind}:${j.after.keys.map(jobId).join(':')}`] : [];
  return ['--parsable', '--hold', ...dependency, j.script];
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  /** What would be submitted (dry run) or was. */
  planned: PlannedJob[] = [];

  constructor(
    private readonly study: Study,
    private readonly o: { command: string; dryRun?: boolean },
  ) {}

  check(): void {
    slurmCommand('sbatch', ['--version']);
    checkRequest(this.study.cfg.slurm, partitions());
    assertNoJobsQueued(this.study, true);
  }

  async run(stages: readonly Stage[], events: ExecutorEvents): Promise<Map<string, Outcome>> {
    const outcomes = new Map<string, Outcome>();
    for (const s of stages) {
      if (s.done()) {
        outcomes.set(s.id, { state: 'cached' });
        events.finish(s, { state: 'cached' });
      }
    }
    const snapshot = this.o.dryRun ? join(slurmDir(this.study), 'study.yaml') : writeSnapshot(this.study);
    this.planned = planJobs(this.study, stages, { command: this.o.command, snapshot });
    if (this.o.dryRun || !this.planned.length) return outcomes;
    mkdirSync(join(slurmDir(this.study), 'logs'), { recursive: true });
    const ids = new Map<string, string>();
    const sub: Submission = { study: this.study.cfg.name, date: new Date().toISOString(), command: this.o.command, snapshot, jobs: [] };
    const byId = new Map(stages.map((s) => [s.id, s]));
    try {
      for (const j of this.planned) {
        writeFileAtomicSync(j.script, j.scriptText);
        const args = sbatchArgs(j, (k) => ids.get(k)!);
        const dependency = args.find((a) => a.startsWith('--dependency='))?.slice('--dependency='.length) ?? null;
        const out = slurmCommand('sbatch', args);
        const job = out.trim().split(';')[0]!;
        if (!/^\d+$/.test(job)) throw new Error(`sbatch ${j.script}: unexpected output "${out.trim()}"`);
        ids.set(j.key, job);
        sub.jobs.push({ key: j.key, job, array: j.array, tasks: j.tasks, dependency, script: j.script });
      }
      writeFileAtomicSync(submissionFile(this.study), JSON.stringify(sub, null, 2) + '\n');
      for (const j of sub.jobs) {
        j.tasks.forEach((task, i) => {
          const job = j.array ? `${j.job}_${i}` : j.job;
          for (const id of task) {
            const s = byId.get(id)!;
            writeRecord(s, { executor: this.name, state: 'queued', job, submitted: sub.date, log: s.log });
            outcomes.set(id, { state: 'queued', job });
            events.finish(s, { state: 'queued', job });
          }
        });
      }
      slurmCommand('scontrol', ['release', ...sub.jobs.map((j) => j.job)]);
    } catch (err) {
      // All or nothing: a half-submitted graph would run stages nobody is waiting for.
      const done = sub.jobs.map((j) => j.job);
      if (done.length) spawnSync('scancel', done);
      throw new Error(`${(err as Error).message}${done.length ? ` (cancelled the ${done.length} job(s) already submitted: ${done.join(', ')})` : ''}`);
    }
    return outcomes;
  }
}

/**
 * Cancels what the study's submission still has in the queue, and marks the records of its stages
 * that had not finished as cancelled. Returns the job ids cancelled.
 */
export function cancelStudy(study: Study, stages: readonly Stage[]): string[] {
  const sub = readSubmission(study);
  if (!sub) throw new Error(`study ${study.cfg.name} has no SLURM submission (${submissionFile(study)}): nothing to cancel (a local run stops with Ctrl-C)`);
  const live = inFlight(sub, queue());
  if (live.length) slurmCommand('scancel', live);
  const jobs = new Set(sub.jobs.map((j) => j.job));
  for (const s of stages) {
    const r: StageRecord | undefined = readRecord(s);
    if (!r || r.executor !== 'slurm' || !r.job || !jobs.has(r.job.split('_')[0]!)) continue;
    if ((r.state === 'queued' || r.state === 'running') && !s.done()) writeRecord(s, { ...r, state: 'cancelled', reason: 'zipper ablate cancel', finished: new Date().toISOString() });
  }
  return live;
}

/** Waits until none of the submission's jobs is in the queue (polling: sbatch --wait backs off to 32 s). */
export async function waitForSubmission(sub: Submission, pollMs = 2000): Promise<void> {
  while (inFlight(sub, queue()).length) await new Promise((r) => setTimeout(r, pollMs));
}
