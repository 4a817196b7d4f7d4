import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { shellQuote } from '../ablate/launch.js';
import { runStages } from '../ablate/run-stages.js';
import { runStudy, thisCommand } from '../ablate/run-study.js';
import { cancelStudy, readSubmission, sbatchArgs, SlurmExecutor, waitForSubmission } from '../ablate/slurm.js';
import { buildGraph } from '../ablate/stages.js';
import { formatStatus, studyStatus } from '../ablate/status.js';
import { formatValue, loadStudy, type Study } from '../ablate/study.js';
import { collect } from './common.js';

/** Executor flags are shorthands for study keys, applied after --set. */
function executorSets(o: { set: string[]; executor?: string; partition?: string; cpusPerTask?: string; mem?: string; time?: string; maxRunning?: string; sbatchArg: string[] }): string[] {
  const sets = [...o.set];
  const positive = (flag: string, v: string) => {
    if (!/^[1-9]\d*$/.test(v)) throw new Error(`${flag} ${v}: expected a positive integer`);
    return v;
  };
  if (o.executor) sets.push(`executor=${o.executor}`);
  if (o.partition) sets.push(`slurm.partition=${formatValue(o.partition)}`);
  if (o.cpusPerTask) sets.push(`slurm.cpus_per_task=${positive('--cpus-per-task', o.cpusPerTask)}`);
  if (o.mem) sets.push(`slurm.mem=${formatValue(o.mem)}`);
  if (o.time) sets.push(`slurm.time=${formatValue(o.time)}`);
  if (o.maxRunning) sets.push(`slurm.max_running=${positive('--max-running', o.maxRunning)}`);
  if (o.sbatchArg.length) sets.push(`slurm.extra_args=${formatValue(o.sbatchArg)}`);
  return sets;
}

function printTables(study: Study): void {
  const md = ['results.partial.md', 'results.md'].map((f) => join(study.results, f)).find((f) => existsSync(f));
  if (md) process.stdout.write(readFileSync(md, 'utf8'));
}

export function addAblate(program: Command): void {
  const ablate = program
    .command('ablate')
    .description('run a study: shared stages once (cached by input hash), every cell of its tables, evaluations, then results tables (md, csv, json) and plots (svg); `ablate status` and `ablate cancel` follow a study')
    .argument('<study>', 'a study YAML, e.g. experiments/paper-tables.yaml')
    .option('-s, --set <key=value>', 'override a study key, e.g. --set workers=2 (repeatable)', collect, [])
    .option('-w, --workers <n>', 'stages run at once (overrides the study)', (v) => parseInt(v, 10))
    .addOption(new Option('--executor <name>', 'where stages run (overrides the study)').choices(['local', 'slurm']))
    .option('--partition <name>', 'SLURM partition (slurm.partition; default: the cluster\'s default)')
    .option('--cpus-per-task <n>', 'SLURM CPUs per job (slurm.cpus_per_task)')
    .option('--mem <size>', 'SLURM memory per job, e.g. 8G (slurm.mem)')
    .option('--time <limit>', 'SLURM time limit per job, e.g. 4:00:00 (slurm.time)')
    .option('--max-running <n>', 'SLURM: cells running at once (slurm.max_running)')
    .option('--sbatch-arg <arg>', 'another sbatch option for every job, e.g. --sbatch-arg=--qos=short (repeatable)', collect, [])
    .option('--wait', 'SLURM: wait for the jobs to end, then print the table')
    .option('--dry-run', 'list the stages and their commands (SLURM: the job scripts and sbatch commands); run nothing')
    .option('--tables-only', 'write tables and plots from the finished stages; run nothing')
    .addOption(new Option('--as-command <line>', 'the command line the tables name (for the SLURM tables job)').hideHelp())
    .action(async (file: string, o) => {
      const study = loadStudy(file, executorSets(o));
      if (o.workers !== undefined && !(o.workers > 0)) throw new Error(`--workers ${o.workers}: expected a positive integer`);
      const log = (l: string) => console.error(l);
      if (o.dryRun) {
        const g = buildGraph(study);
        if (study.cfg.executor === 'slurm') {
          const ex = new SlurmExecutor(study, { command: thisCommand(), dryRun: true });
          ex.check();
          await ex.run(g.stages, { start: () => {}, finish: () => {} });
          const jobs = ex.planned.map((j) => `# sbatch ${sbatchArgs(j, (k) => `<job of ${k}>`).join(' ')}\n${j.scriptText}`);
          process.stdout.write(`${ex.planned.length} jobs for ${g.stages.filter((s) => !s.done()).length} stages not done (${g.stages.length} stages, ${g.cells.length} cells); nothing submitted. Each is submitted held, then all are released.\n\n${jobs.join('\n')}`);
          return;
        }
        const lines = g.stages.map((s) => `${s.done() ? 'done ' : 'todo '} ${s.id}\n      zipper ${s.args.map(shellQuote).join(' ')}`);
        process.stdout.write(`${g.stages.length} stages, ${g.cells.length} cells; results -> ${study.results}\n${lines.join('\n')}\n`);
        return;
      }
      const r = await runStudy(study, { workers: o.workers, tablesOnly: Boolean(o.tablesOnly), log, command: o.asCommand });
      if (r.queued) {
        const sub = readSubmission(study)!;
        const queued = [...r.outcomes.values()].filter((x) => x.state === 'queued').length;
        log(`submitted ${queued} stages as SLURM jobs ${sub.jobs.map((j) => j.job).join(', ')}; the tables job writes ${join(study.results, 'results.md')}`);
        log(`follow: zipper ablate status ${file}    stop: zipper ablate cancel ${file}`);
        if (!o.wait) return;
        await waitForSubmission(sub);
        const st = studyStatus(study);
        process.stderr.write(formatStatus(st));
        printTables(study);
        if (st.results !== 'complete') throw new Error(`the study is incomplete (${st.cells.filter((c) => c.state !== 'done').map((c) => `${c.table}/${c.cell}: ${c.state}`).join(', ')}); rerun the same command to resubmit what is missing`);
        return;
      }
      const md = r.files.find((f) => f.endsWith('.md'))!;
      process.stdout.write(readFileSync(md, 'utf8'));
      console.error(`wrote ${r.files.join(', ')}`);
      const failed = [...r.outcomes.entries()].filter(([, x]) => x.state === 'failed');
      if (!r.complete) {
        throw new Error(`the study is incomplete${failed.length ? ` (${failed.length} stage(s) failed: ${failed.map(([id]) => id).join(', ')})` : ''}; the partial table says which cells are missing; rerun the same command to continue`);
      }
    });

  ablate
    .command('status')
    .description('every shared stage and cell of a study: done, running, pending, failed, cancelled or not run (records in the run folders, and SLURM\'s queue)')
    .argument('<study>', 'the study YAML')
    .option('-s, --set <key=value>', 'the same study overrides as the run (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action((file: string, o) => {
      const st = studyStatus(loadStudy(file, o.set));
      process.stdout.write(o.json ? JSON.stringify(st, null, 2) + '\n' : formatStatus(st));
    });

  ablate
    .command('cancel')
    .description('cancel what the study\'s SLURM submission has queued or running; rerun `zipper ablate` to resubmit what is missing')
    .argument('<study>', 'the study YAML')
    .option('-s, --set <key=value>', 'the same study overrides as the run (repeatable)', collect, [])
    .action((file: string, o) => {
      const study = loadStudy(file, o.set);
      const jobs = cancelStudy(study, buildGraph(study).stages);
      console.error(jobs.length ? `cancelled SLURM jobs ${jobs.join(', ')}` : 'nothing of this study was in the queue');
    });

  ablate
    .command('run-stages', { hidden: true })
    .description('run named stages of a study in order (what a SLURM job runs)')
    .argument('<study>', 'the study YAML (the resolved snapshot)')
    .argument('<stages...>', 'stage ids')
    .action(async (file: string, ids: string[]) => {
      const code = await runStages(loadStudy(file), ids, (l) => console.log(`${new Date().toISOString()} ${l}`));
      process.exitCode = code;
    });
}
