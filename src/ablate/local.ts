// The local executor: each stage is a `zipper` child process on this machine (launch.ts), at most
// `workers` at once. On SIGINT/SIGTERM no new stage starts; running ones get the signal (training
// stages checkpoint and stop) and end as cancelled, so a rerun resumes them.
import { topoOrder, isBad, type Executor, type ExecutorEvents, type Outcome } from './executor.js';
import { launchStage, type Launched } from './launch.js';
import { writeRecord } from './record.js';
import { assertNoJobsQueued } from './slurm.js';
import type { Stage } from './stages.js';
import type { Study } from './study.js';

export class LocalExecutor implements Executor {
  readonly name = 'local';

  constructor(
    private readonly o: { workers: number; env?: NodeJS.ProcessEnv; study?: Study },
  ) {}

  /** A study whose SLURM jobs are still queued would have two runners writing its stages. */
  check(): void {
    if (this.o.study) assertNoJobsQueued(this.o.study, false);
  }

  async run(stages: readonly Stage[], events: ExecutorEvents): Promise<Map<string, Outcome>> {
    const order = topoOrder(stages);
    const outcomes = new Map<string, Outcome>();
    const running = new Map<string, Launched>();
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      stopping = true;
      for (const l of running.values()) {
        l.stopping(`${sig} to zipper ablate`);
        l.child.kill(sig);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const settle = (s: Stage, o: Outcome) => {
      outcomes.set(s.id, o);
      if (o.state === 'skipped') writeRecord(s, { executor: this.name, state: 'skipped', reason: o.reason });
      events.finish(s, o);
    };
    try {
      await new Promise<void>((resolveAll) => {
        const pump = () => {
          for (const s of order) {
            if (outcomes.has(s.id) || running.has(s.id)) continue;
            const failed = s.deps.find((d) => isBad(outcomes.get(d)));
            if (failed) {
              settle(s, { state: 'skipped', reason: `${failed} did not finish` });
              continue;
            }
            if (!s.deps.every((d) => outcomes.get(d)?.state === 'done' || outcomes.get(d)?.state === 'cached')) continue;
            if (s.done()) {
              settle(s, { state: 'cached' });
              continue;
            }
            if (stopping) {
              settle(s, { state: 'skipped', reason: 'interrupted' });
              continue;
            }
            if (running.size >= this.o.workers) continue;
            events.start(s);
            const l = launchStage(s, { executor: this.name, env: this.o.env, detached: true });
            running.set(s.id, l);
            void l.outcome.then((o) => {
              running.delete(s.id);
              settle(s, o);
              setImmediate(pump);
            });
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
}
