// `zipper ablate run-stages <study> <stage>...`: what a scheduler's job runs. The named stages of the
// study's graph, in order, each a `zipper` child process (launch.ts) that keeps its record; the first
// that does not finish ends the job, and the rest are recorded as skipped.
import { launchStage, type Launched } from './launch.js';
import { writeRecord } from './record.js';
import { buildGraph } from './stages.js';
import type { Study } from './study.js';

/** SLURM's id for this job: 123, or 123_4 for an array task. */
export function slurmJobId(env = process.env): string | undefined {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID;
}

/** Runs the stages; resolves to the process's exit code (0 all done, 1 one failed, 143 cancelled). */
export async function runStages(study: Study, ids: string[], log: (line: string) => void): Promise<number> {
  const graph = buildGraph(study);
  const byId = new Map(graph.stages.map((s) => [s.id, s]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length) throw new Error(`${study.file}: no stage ${missing.join(', ')} in this study: a config it reads changed after the jobs were submitted; resubmit with zipper ablate`);
  const stages = ids.map((id) => byId.get(id)!);
  const job = slurmJobId();
  const executor = job ? 'slurm' : 'local';
  let current: Launched | undefined;
  let stopped: string | undefined;
  // scancel and the time limit signal every process of the job, the stage's child included (its
  // training checkpoints and stops); passing the signal on would make it quit without a checkpoint.
  const onSignal = (sig: NodeJS.Signals) => {
    stopped ??= `${sig} (scancel, zipper ablate cancel or the time limit)`;
    current?.stopping(stopped);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    for (const [i, s] of stages.entries()) {
      const skipRest = (reason: string) => stages.slice(i + 1).filter((r) => !r.done()).forEach((r) => writeRecord(r, { executor, job, state: 'skipped', reason }));
      if (s.done()) {
        log(`${s.id}: done already`);
        continue;
      }
      const notDone = s.deps.find((d) => !byId.get(d)!.done());
      if (notDone) {
        const reason = `${notDone} is not done`;
        writeRecord(s, { executor, job, state: 'skipped', reason });
        skipRest(`${s.id} did not run`);
        log(`${s.id}: skipped: ${reason}`);
        return 1;
      }
      if (stopped) {
        writeRecord(s, { executor, job, state: 'cancelled', reason: `${stopped}, before it started` });
        skipRest(`${s.id} did not run`);
        return 143;
      }
      log(`${s.id}: start (${s.kind})`);
      current = launchStage(s, { executor, job, detached: false });
      if (stopped) current.stopping(stopped);
      const o = await current.outcome;
      current = undefined;
      log(`${s.id}: ${o.state}${o.state === 'failed' ? ` (exit ${o.code ?? o.signal}; log ${o.log})` : ''}`);
      if (o.state !== 'done') {
        skipRest(`${s.id} did not finish`);
        return o.state === 'cancelled' ? 143 : 1;
      }
    }
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
