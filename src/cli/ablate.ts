import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { runStudy } from '../ablate/run-study.js';
import { loadStudy } from '../ablate/study.js';
import { buildGraph } from '../ablate/stages.js';
import { shellQuote } from '../ablate/local.js';
import { collect } from './common.js';

export function addAblate(program: Command): void {
  program
    .command('ablate')
    .description('run a study: shared stages once (cached by input hash), every cell of its tables, evaluations, then results tables (md, csv, json) and plots (svg)')
    .argument('<study>', 'a study YAML, e.g. experiments/paper-tables.yaml')
    .option('-s, --set <key=value>', 'override a study key, e.g. --set workers=2 (repeatable)', collect, [])
    .option('-w, --workers <n>', 'stages run at once (overrides the study)', (v) => parseInt(v, 10))
    .option('--dry-run', 'list the stages and their commands; run nothing')
    .option('--tables-only', 'write tables and plots from the finished stages; run nothing')
    .action(async (file: string, o) => {
      const study = loadStudy(file, o.set);
      if (o.workers !== undefined && !(o.workers > 0)) throw new Error(`--workers ${o.workers}: expected a positive integer`);
      if (o.dryRun) {
        const g = buildGraph(study);
        const lines = g.stages.map((s) => `${s.done() ? 'done ' : 'todo '} ${s.id}\n      zipper ${s.args.map(shellQuote).join(' ')}`);
        process.stdout.write(`${g.stages.length} stages, ${g.cells.length} cells; results -> ${study.results}\n${lines.join('\n')}\n`);
        return;
      }
      const r = await runStudy(study, { workers: o.workers, tablesOnly: Boolean(o.tablesOnly), log: (l) => console.error(l) });
      const md = r.files.find((f) => f.endsWith('.md'))!;
      process.stdout.write(readFileSync(md, 'utf8'));
      console.error(`wrote ${r.files.join(', ')}`);
      const failed = [...r.outcomes.entries()].filter(([, x]) => x.state === 'failed');
      if (!r.complete) {
        throw new Error(`the study is incomplete${failed.length ? ` (${failed.length} stage(s) failed: ${failed.map(([id]) => id).join(', ')})` : ''}; the partial table says which cells are missing; rerun the same command to continue`);
      }
    });
}
