// `zipper ablate`: validate the study and every cell's config, build the stage graph, run what is
// not done, then write the tables and plots. Everything that can be wrong with the study file is
// found before the first stage starts.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { environmentRecord } from '../run/env.js';
import { writeJsonFile } from '../util/fs.js';
import type { Executor, Outcome } from './executor.js';
import { LocalExecutor, shellQuote } from './local.js';
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
  executor?: Executor;
}

export interface AblateSummary {
  graph: StudyGraph;
  outcomes: Map<string, Outcome>;
  tables: TableResult[];
  files: string[];
  complete: boolean;
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
  mkdirSync(study.results, { recursive: true });
  await writeJsonFile(join(study.results, 'study.json'), { name: study.cfg.name, file: resolve(study.file), cache: resolve(study.cfg.cache) });
  const command = `zipper ${process.argv.slice(2).map(shellQuote).join(' ')}`;
  let outcomes = new Map<string, Outcome>();
  if (!o.tablesOnly) {
    const total = graph.stages.length;
    let finished = 0;
    const t0 = performance.now();
    const clock = () => `${((performance.now() - t0) / 60000).toFixed(1).padStart(5)} min`;
    const executor = o.executor ?? new LocalExecutor({ workers: o.workers ?? study.cfg.workers, logs: join(study.cfg.cache, 'logs') });
    o.log(`study ${study.cfg.name}: ${total} stages (${graph.cells.length} cells), results -> ${study.results}`);
    outcomes = await executor.run(graph.stages, {
      start: (s) => o.log(`${clock()}  [${finished}/${total}] ${'start'.padEnd(16)} ${describe(s)}`),
      finish: (s, out) => {
        finished++;
        const what = out.state === 'done' ? `done in ${out.seconds.toFixed(0)} s` : out.state === 'cached' ? 'cached' : out.state === 'failed' ? `FAILED (exit ${out.code ?? out.signal}; log ${out.log})` : `skipped: ${out.reason}`;
        if (out.state !== 'cached') o.log(`${clock()}  [${finished}/${total}] ${what.padEnd(16)} ${describe(s)}`);
      },
    });
  }
  const tables = gatherResults(study, graph, outcomes);
  const { files, complete } = await writeTables(study, tables, { study: study.cfg.name, command, date: new Date().toISOString(), environment: environmentRecord() });
  files.push(...(await writePlots(study, tables)));
  return { graph, outcomes, tables, files, complete };
}
