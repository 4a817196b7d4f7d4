// Executors run a study's stage graph. The interface is small so that another scheduler (SLURM) is
// one more file: it gets the stages in dependency order and reports each one's outcome.
import type { Stage } from './stages.js';

export type Outcome =
  | { state: 'cached' }
  | { state: 'done'; seconds: number }
  | { state: 'failed'; log: string; code: number | null; signal: string | null }
  /** Not run: a stage it depends on failed, or the study was interrupted first. */
  | { state: 'skipped'; reason: string };

export interface ExecutorEvents {
  start(stage: Stage): void;
  finish(stage: Stage, outcome: Outcome): void;
}

export interface Executor {
  /** Runs every stage not yet done, dependencies first; resolves when nothing more can run. */
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
