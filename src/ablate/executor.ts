// Executors run a study's stage graph. The interface is small so that another scheduler is one more
// file: `local.ts` runs stages here and reports each outcome; `slurm.ts` submits them as jobs that
// mirror the graph and reports them queued, its last job writing the tables. Both keep every
// stage's record (record.ts), which is what `zipper ablate status` reads.
import type { Stage } from './stages.js';

export type Outcome =
  | { state: 'cached' }
  | { state: 'done'; seconds: number }
  | { state: 'failed'; log: string; code: number | null; signal: string | null }
  /** Stopped on request (Ctrl-C, scancel, `zipper ablate cancel`); a rerun resumes it. */
  | { state: 'cancelled'; log: string; reason: string }
  /** Not run: a stage it depends on failed, or the study was interrupted first. */
  | { state: 'skipped'; reason: string }
  /** Handed to a scheduler: it runs later, as this job. */
  | { state: 'queued'; job: string };

/** Outcomes that leave a stage unfinished for good (until a rerun). */
export const isBad = (o: Outcome | undefined): boolean => o?.state === 'failed' || o?.state === 'cancelled' || o?.state === 'skipped';

export interface ExecutorEvents {
  start(stage: Stage): void;
  finish(stage: Stage, outcome: Outcome): void;
}

export interface Executor {
  /** Which one, for records and logs: local, slurm. */
  readonly name: string;
  /**
   * Everything that can be checked before anything starts (tools on the PATH, the scheduler's
   * partitions and limits, jobs of this study still queued); throws with the reason.
   */
  check(): void;
  /**
   * Runs every stage not yet done, dependencies first, and resolves when nothing more can run here.
   * A scheduler resolves once its jobs are queued (outcome `queued`) and writes the results tables
   * itself, as a last job.
   */
  run(stages: readonly Stage[], events: ExecutorEvents): Promise<Map<string, Outcome>>;
}

/** Stages in an order where every stage comes after its dependencies (throws on a cycle). */
export function topoOrder(stages: readonly Stage[]): Stage[] {
  const byId = new Map(stages.map((s) => [s.id, s]));
  const out: Stage[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: Stage) => {
    const st = state.get(s.id);
    if (st === 'done') return;
    if (st === 'visiting') throw new Error(`stage graph has a cycle through ${s.id}`);
    state.set(s.id, 'visiting');
    for (const d of s.deps) {
      const dep = byId.get(d);
      if (!dep) throw new Error(`stage ${s.id} depends on ${d}, which is not in the graph`);
      visit(dep);
    }
    state.set(s.id, 'done');
    out.push(s);
  };
  stages.forEach(visit);
  return out;
}
