// A study (`zipper ablate experiments/<name>.yaml`): the shared stages every cell needs (corpus,
// speech tokens, both towers, the TTS judge), the fine-tuning config every cell starts from, the
// evaluations, and tables of cells: explicit cells, a grid over config keys (the cartesian product),
// or both. Cells are fine-tuning configs (FuseConfig keys); each is its own run directory.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../config/load.js';

/** A stage's config: a YAML file (relative to the study file) and overrides. */
const StageRef = z
  .object({
    config: z.string().min(1),
    set: z.array(z.string()).default([]),
  })
  .strict();

const Values = z.record(z.string(), z.unknown());

const Table = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-"'),
    title: z.string().default(''),
    /** Fixed values for every cell of this table (FuseConfig keys). */
    set: Values.default({}),
    /** Named cells, each a mapping of FuseConfig keys to values. */
    cells: z.record(z.string(), Values).default({}),
    /** A grid: every combination of these keys' values is a cell. */
    axes: z.record(z.string(), z.array(z.unknown()).min(1)).default({}),
    /** The cell the others are tested against (Wilcoxon signed-rank on per-utterance errors). */
    baseline: z.string().optional(),
  })
  .strict();

const Plot = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/),
    table: z.string(),
    /** A cell value (a config key such as data.fraction) for the x axis. */
    x: z.string(),
    /** A result column (see results.ts: wer.<split>, tts.wer_gold, dev_asr_loss, ...). */
    y: z.string(),
    /** A config key whose values are drawn as separate lines. */
    series: z.string().optional(),
    log_x: z.boolean().default(false),
  })
  .strict();

/** SLURM sbatch settings for `--executor slurm` (flags override them; see slurm.ts). */
const SlurmSettings = z
  .object({
    /** Default: the cluster's default partition. */
    partition: z.string().min(1).optional(),
    /** CPUs for each job (a shared stage or a cell). */
    cpus_per_task: z.number().int().positive().default(1),
    /** Memory for each job, sbatch's --mem: a number of megabytes or with K, M, G, T. */
    mem: z.string().regex(/^\d+[KMGT]?$/i, 'a number of megabytes, or with K, M, G or T, e.g. 4G').optional(),
    /** Time limit for each job, sbatch's --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. */
    time: z.union([z.string().min(1), z.number().int().positive().transform(String)]).optional(),
    /** Cells running at once (the job array's %K throttle); default: as many as the cluster allows. */
    max_running: z.number().int().positive().optional(),
    /** More sbatch options for every job, e.g. ["--qos=short", "--account=lab"]. */
    extra_args: z.array(z.string().regex(/^--?\w/, 'an sbatch option, e.g. --qos=short')).default([]),
  })
  .strict();
export type SlurmSettings = z.infer<typeof SlurmSettings>;

export const StudyConfig = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-"'),
    description: z.string().default(''),
    /** Shared stages and cells live here (relative to the study file), each under <kind>-<hash of its resolved inputs>. */
    cache: z.string().default('runs/cache'),
    /** Tables and plots, relative to the study file (default: a folder named after the study, beside it). */
    results: z.string().optional(),
    /** Stages run at once (each a `zipper` process). */
    workers: z.number().int().positive().default(1),
    /** Where stages run: local (worker processes here) or slurm (jobs on a cluster; shared filesystem). */
    executor: z.enum(['local', 'slurm']).default('local'),
    slurm: SlurmSettings.default({ cpus_per_task: 1, extra_args: [] }),
    corpus: StageRef,
    tokens: StageRef,
    text_tower: StageRef,
    speech_tower: StageRef,
    /** The TTS judge (`zipper judge train`); needed when eval.tts is set. */
    judge: StageRef.optional(),
    /** The fine-tuning config every cell starts from. */
    fuse: StageRef,
    eval: z
      .object({
        asr: z
          .object({
            splits: z.array(z.string()).min(1).default(['test-clean', 'test-other']),
            limit: z.number().int().positive().optional(),
            beam: z.number().int().positive().default(1),
            batch: z.number().int().positive().default(16),
          })
          .strict()
          .optional(),
        tts: z
          .object({
            split: z.string().default('test-clean'),
            limit: z.number().int().positive().optional(),
            beam: z.number().int().positive().default(1),
            batch: z.number().int().positive().default(16),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    tables: z.array(Table).min(1, 'a study needs at least one table'),
    plots: z.array(Plot).default([]),
  })
  .strict();
export type StudyConfig = z.infer<typeof StudyConfig>;
export type StageRef = z.infer<typeof StageRef>;

export interface Study {
  file: string;
  cfg: StudyConfig;
  /** Where the tables go. */
  results: string;
}

/** One cell as the study names it: its table, label and the config values that make it. */
export interface CellSpec {
  table: string;
  label: string;
  values: Record<string, unknown>;
}

export function loadStudy(file: string, sets: string[] = []): Study {
  if (!existsSync(file)) throw new ConfigError(`${file}: no such study file`);
  const cfg = loadConfig(StudyConfig, { file, sets });
  const base = dirname(resolve(file));
  const at = (p: string) => resolve(base, p);
  const fix = (s: StageRef): StageRef => ({ ...s, config: at(s.config) });
  cfg.corpus = fix(cfg.corpus);
  cfg.tokens = fix(cfg.tokens);
  cfg.text_tower = fix(cfg.text_tower);
  cfg.speech_tower = fix(cfg.speech_tower);
  if (cfg.judge) cfg.judge = fix(cfg.judge);
  cfg.fuse = fix(cfg.fuse);
  cfg.cache = at(cfg.cache);
  for (const s of [cfg.corpus, cfg.tokens, cfg.text_tower, cfg.speech_tower, cfg.fuse, ...(cfg.judge ? [cfg.judge] : [])]) {
    if (!existsSync(s.config)) throw new ConfigError(`${file}: config ${s.config} not found`);
  }
  if (cfg.eval.tts && !cfg.judge) throw new ConfigError(`${file}: eval.tts needs a judge stage (judge: { config: ... })`);
  if (!cfg.eval.asr && !cfg.eval.tts) throw new ConfigError(`${file}: eval: name asr, tts or both (a study with no evaluation has no table)`);
  const names = new Set<string>();
  for (const t of cfg.tables) {
    if (names.has(t.name)) throw new ConfigError(`${file}: tables: two tables are named ${t.name}`);
    names.add(t.name);
  }
  for (const p of cfg.plots) {
    if (!names.has(p.table)) throw new ConfigError(`${file}: plots.${p.name}: no table named ${p.table} (tables: ${[...names].join(', ')})`);
  }
  return { file, cfg, results: resolve(base, cfg.results ?? cfg.name) };
}

/** Every cell of every table, in the order written (explicit cells first, then the grid). */
export function expandCells(study: Study): CellSpec[] {
  const out: CellSpec[] = [];
  for (const t of study.cfg.tables) {
    const cells: CellSpec[] = Object.entries(t.cells).map(([label, v]) => ({ table: t.name, label, values: { ...t.set, ...v } }));
    const axes = Object.entries(t.axes);
    if (axes.length) {
      let combos: Record<string, unknown>[] = [{}];
      for (const [key, vals] of axes) combos = combos.flatMap((c) => vals.map((v) => ({ ...c, [key]: v })));
      for (const c of combos) cells.push({ table: t.name, label: Object.entries(c).map(([k, v]) => `${k}=${formatValue(v)}`).join(','), values: { ...t.set, ...c } });
    }
    if (!cells.length) throw new ConfigError(`${study.file}: table ${t.name} has no cells (give cells: or axes:)`);
    const labels = new Set(cells.map((c) => c.label));
    if (labels.size !== cells.length) throw new ConfigError(`${study.file}: table ${t.name} names a cell twice`);
    if (t.baseline !== undefined && !labels.has(t.baseline)) throw new ConfigError(`${study.file}: table ${t.name}: baseline ${t.baseline} is not one of its cells (${[...labels].join(', ')})`);
    out.push(...cells);
  }
  return out;
}

/** A value as a `--set key=value` right-hand side (YAML flow style, one line). */
export function formatValue(v: unknown): string {
  return YAML.stringify(v, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

/** The study file's bytes, for the results record. */
export function studyText(study: Study): string {
  return readFileSync(study.file, 'utf8');
}
