// One stage as a `zipper` child process: its log (Stage.log, headed by the exact command), and its
// record (record.ts) moved through running to done, failed or cancelled. The local executor and a
// scheduler's job (`zipper ablate run-stages`) both start stages through here.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { projectRoot } from '../cli/common.js';
import type { Outcome } from './executor.js';
import { readRecord, writeRecord } from './record.js';
import type { Stage } from './stages.js';

export interface LaunchOptions {
  /** Executor name and scheduler job id, for the record. */
  executor: string;
  job?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Its own process group, so a terminal's Ctrl-C reaches only the runner, which passes it on once.
   * Inside a SLURM job the child stays in the job's group: scancel signals every process of the job.
   */
  detached: boolean;
}

export interface Launched {
  child: ChildProcess;
  outcome: Promise<Outcome>;
  /** Marks the stop as requested (a signal), so the stage ends as cancelled, not failed. */
  stopping(reason: string): void;
}

/** The built `zipper` entry point that stage processes and scheduler jobs run under node. */
export const zipperMain = () => join(projectRoot(), 'dist', 'src', 'cli', 'main.js');

export function launchStage(s: Stage, o: LaunchOptions): Launched {
  const log = s.log;
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  const started = new Date().toISOString();
  writeSync(fd, `# ${started}${o.job ? ` (${o.executor} job ${o.job})` : ''}\n# zipper ${s.args.map(shellQuote).join(' ')}\n`);
  const t0 = performance.now();
  const child = spawn(process.execPath, [zipperMain(), ...s.args], { stdio: ['ignore', fd, fd], env: o.env ?? process.env, detached: o.detached });
  const prev = readRecord(s);
  const submitted = o.job && prev?.job === o.job ? prev.submitted : undefined;
  writeRecord(s, { executor: o.executor, job: o.job, submitted, state: 'running', pid: child.pid, log, started });
  let stopReason: string | undefined;
  const outcome = new Promise<Outcome>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      closeSync(fd);
      const base = { executor: o.executor, job: o.job, submitted, log, started, finished: new Date().toISOString(), exit_code: code, signal };
      if (code === 0 && s.done()) {
        writeRecord(s, { ...base, state: 'done' });
        resolve({ state: 'done', seconds: (performance.now() - t0) / 1000 });
      } else if (stopReason !== undefined) {
        writeRecord(s, { ...base, state: 'cancelled', reason: stopReason });
        resolve({ state: 'cancelled', log, reason: stopReason });
      } else {
        writeRecord(s, { ...base, state: 'failed' });
        resolve({ state: 'failed', log, code, signal });
      }
    };
    child.on('error', () => finish(null, null));
    child.on('exit', finish);
  });
  return { child, outcome, stopping: (reason) => (stopReason ??= reason) };
}

/** An argument as a POSIX shell word (for the command line written to logs, tables and scripts). */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
