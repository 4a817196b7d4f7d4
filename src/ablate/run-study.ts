// `zipper ablate`: validate the study and every cell's config, build the stage graph, run what is
// not done, then write the tables and plots. Everything that can be wrong with the study file is
// found before the first stage starts.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { environmentRecord } from '../run/env.js';
import { writeJsonFile } from '../util/fs.js';
import type { Executor, Outcome } from './executor.js';
import { shellQuote } from './launch.js';
import { LocalExecutor } from './local.js';
import { recordedOutcomes } from './record.js';
import { SlurmExecutor } from './slurm.js';
import { writePlots } from './plots.js';
import { gatherResults, type TableResult } from './results.js';
import { buildGraph, type Stage, type StudyGraph } from './stages.js';
import { writeTables } from './tables.js';
import type { Study } from './study.js';

export interface AblateOptions {
  /** Overrides the study's worker count. */
  workers?: number;
  /** Only write tables and plots from what is finished; run nothing. */
  tablesOnly?: boolean;
  log: (line: string) => void;
  /** Default: the study's executor (local, or slurm with its settings). */
  executor?: Executor;
  /** The command line the tables name (default: this process's). */
  command?: string;
}

export interface AblateSummary {
  graph: StudyGraph;
  outcomes: Map<string, Outcome>;
  tables: TableResult[];
  files: string[];
  complete: boolean;
  /** A scheduler holds the stages; its last job writes the tables (none written here). */
  queued: boolean;
}

export const thisCommand = () => `zipper ${process.argv.slice(2).map(shellQuote).join(' ')}`;

/** The executor a study names: local worker processes, or SLURM jobs. */
export function studyExecutor(study: Study, o: { workers?: number; command: string }): Executor {
  if (study.cfg.executor === 'slurm') return new SlurmExecutor(study, { command: o.command });
  return new LocalExecutor({ workers: o.workers ?? study.cfg.workers, study });
}

/**
 * The results folder belongs to one study: a folder written by another (another name or study
 * file) is refused rather than mixed.
 */
export function claimResults(study: Study): void {
  const f = join(study.results, 'study.json');
  if (existsSync(f)) {
    const prev = JSON.parse(readFileSync(f, 'utf8')) as { name?: string };
    if (prev.name !== study.cfg.name) throw new Error(`${study.results} holds the results of study "${prev.name}", not "${study.cfg.name}" (${f}): choose another results folder`);
  }
}

const describe = (s: Stage) => `${s.kind.padEnd(12)} ${s.id}`;

export async function runStudy(study: Study, o: AblateOptions): Promise<AblateSummary> {
  claimResults(study);
  const graph = buildGraph(study);
  const command = o.command ?? thisCommand();
  let outcomes: Map<string, Outcome>;
  if (o.tablesOnly) {
    // Tables made after the fact (the SLURM tables job, --tables-only) read the stages' records.
    outcomes = recordedOutcomes(graph.stages);
  } else {
    const executor = o.executor ?? studyExecutor(study, { workers: o.workers, command });
    executor.check();
    mkdirSync(study.results, { recursive: true });
    await writeJsonFile(join(study.results, 'study.json'), { name: study.cfg.name, file: resolve(study.file), cache: resolve(study.cfg.cache) });
    const total = graph.stages.length;
    let finished = 0;
    const t0 = performance.now();
    const clock = () => `${((performance.now() - t0) / 60000).toFixed(1).padStart(5)} min`;
    o.log(`study ${study.cfg.name}: ${total} stages (${graph.cells.length} cells), ${executor.name} executor, results -> ${study.results}`);
    outcomes = await executor.run(graph.stages, {
      start: (s) => o.log(`${clock()}  [${finished}/${total}] ${'start'.padEnd(16)} ${describe(s)}`),
      finish: (s, out) => {
        finished++;
        if (out.state !== 'cached') o.log(`${clock()}  [${finished}/${total}] ${describeOutcome(out).padEnd(16)} ${describe(s)}`);
      },
    });
    if ([...outcomes.values()].some((x) => x.state === 'queued')) return { graph, outcomes, tables: [], files: [], complete: false, queued: true };
  }
  const tables = gatherResults(study, graph, outcomes);
  const { files, complete } = await writeTables(study, tables, { study: study.cfg.name, command, date: new Date().toISOString(), environment: environmentRecord() });
  files.push(...(await writePlots(study, tables)));
  return { graph, outcomes, tables, files, complete, queued: false };
}

function describeOutcome(out: Outcome): string {
  switch (out.state) {
    case 'done':
      return `done in ${out.seconds.toFixed(0)} s`;
    case 'cached':
      return 'cached';
    case 'failed':
      return `FAILED (exit ${out.code ?? out.signal}; log ${out.log})`;
    case 'cancelled':
      return `cancelled: ${out.reason}`;
    case 'skipped':
      return `skipped: ${out.reason}`;
    case 'queued':
      return `queued: job ${out.job}`;
  }
}
