// The local executor: each stage is a `zipper` child process on this machine, at most `workers` at
// once. Output goes to <cache>/logs/<stage>.log, headed by the exact command. On SIGINT/SIGTERM no
// new stage starts; running ones get the signal (training stages checkpoint and stop) and are
// reported as failed, so a rerun resumes them.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../cli/common.js';
import { topoOrder, type Executor, type ExecutorEvents, type Outcome } from './executor.js';
import type { Stage } from './stages.js';

export class LocalExecutor implements Executor {
  constructor(
    private readonly o: { workers: number; logs: string; env?: NodeJS.ProcessEnv },
  ) {}

  async run(stages: readonly Stage[], events: ExecutorEvents): Promise<Map<string, Outcome>> {
    const order = topoOrder(stages);
    const outcomes = new Map<string, Outcome>();
    const running = new Map<string, ChildProcess>();
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      stopping = true;
      for (const child of running.values()) child.kill(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    mkdirSync(this.o.logs, { recursive: true });
    const main = join(projectRoot(), 'dist', 'src', 'cli', 'main.js');
    try {
      await new Promise<void>((resolveAll) => {
        const pump = () => {
          for (const s of order) {
            if (outcomes.has(s.id) || running.has(s.id)) continue;
            const failed = s.deps.find((d) => {
              const o = outcomes.get(d);
              return o && (o.state === 'failed' || o.state === 'skipped');
            });
            if (failed) {
              outcomes.set(s.id, { state: 'skipped', reason: `${failed} did not finish` });
              events.finish(s, outcomes.get(s.id)!);
              continue;
            }
            if (!s.deps.every((d) => outcomes.get(d)?.state === 'done' || outcomes.get(d)?.state === 'cached')) continue;
            if (s.done()) {
              outcomes.set(s.id, { state: 'cached' });
              events.finish(s, outcomes.get(s.id)!);
              continue;
            }
            if (stopping) {
              outcomes.set(s.id, { state: 'skipped', reason: 'interrupted' });
              events.finish(s, outcomes.get(s.id)!);
              continue;
            }
            if (running.size >= this.o.workers) continue;
            running.set(s.id, this.launch(s, main, events, (o) => {
              running.delete(s.id);
              outcomes.set(s.id, o);
              events.finish(s, o);
              setImmediate(pump);
            }));
          }
          if (!running.size && order.every((s) => outcomes.has(s.id))) resolveAll();
          // Nothing running and nothing startable would be a bug in the graph; topoOrder rules it out.
        };
        pump();
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return outcomes;
  }

  private launch(s: Stage, main: string, events: ExecutorEvents, done: (o: Outcome) => void): ChildProcess {
    const log = join(this.o.logs, `${s.id}.log`);
    const fd = openSync(log, 'a');
    writeSync(fd, `# ${new Date().toISOString()}\n# zipper ${s.args.map(shellQuote).join(' ')}\n`);
    const t0 = performance.now();
    events.start(s);
    // Its own process group: a terminal's Ctrl-C reaches the runner, which passes it on once.
    const child = spawn(process.execPath, [main, ...s.args], { stdio: ['ignore', fd, fd], env: this.o.env ?? process.env, detached: true });
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      closeSync(fd);
      if (code === 0 && s.done()) done({ state: 'done', seconds: (performance.now() - t0) / 1000 });
      else done({ state: 'failed', log, code, signal });
    };
    child.on('error', () => finish(null, null));
    child.on('exit', finish);
    return child;
  }
}

/** An argument as a POSIX shell word (for the command line written to logs and tables). */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
