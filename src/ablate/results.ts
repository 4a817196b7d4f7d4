// A study's results: every cell's fine-tuning summary and evaluations gathered into tables, each
// system tested against its table's baseline (Wilcoxon signed-rank on per-utterance word errors).
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pairById, wilcoxonSignedRank } from '../eval/significance.js';
import { isBad, type Outcome } from './executor.js';
import type { Cell, StudyGraph } from './stages.js';
import type { Study } from './study.js';

/** Columns, in table order: fine-tuning figures, then ASR per split, then TTS. */
export interface Column {
  key: string;
  header: string;
  digits: number;
  /** A WER column: tested against the baseline when per-utterance errors exist. */
  paired?: boolean;
}

export interface CellResult {
  table: string;
  label: string;
  values: Record<string, unknown>;
  /** The cell's run folder, relative to the results folder. */
  run: string;
  /** done: every stage of the cell finished; otherwise what is missing. */
  status: 'done' | 'failed' | 'cancelled' | 'missing';
  /** Engine and device the cell fine-tuned on (from its summary), e.g. ort/cpu. */
  engine?: string;
  problem?: string;
  columns: Record<string, number | null>;
  /** p-values against the table's baseline, per paired column. */
  p: Record<string, number>;
}

export interface TableResult {
  name: string;
  title: string;
  baseline?: string;
  cells: CellResult[];
  /** The judge on gold speech tokens (Table 2's oracle row), when TTS was evaluated. */
  oracle?: { wer_gold: number; utterances: number };
}

type PerUtt = { id: string; errors: number }[];

const pct = (x: unknown) => (typeof x === 'number' ? 100 * x : null);
const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const readJson = (f: string): Record<string, unknown> | null => (existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>) : null);

export function columnsOf(study: Study): Column[] {
  const cols: Column[] = [
    { key: 'aligned_hours', header: 'aligned h', digits: 2 },
    { key: 'best_step', header: 'best step', digits: 0 },
    { key: 'dev_asr_loss', header: 'dev ASR loss', digits: 3 },
    { key: 'gap_asr', header: 'ASR gap', digits: 3 },
    { key: 'dev_tts_loss', header: 'dev TTS loss', digits: 3 },
    { key: 'gap_tts', header: 'TTS gap', digits: 3 },
  ];
  for (const s of study.cfg.eval.asr?.splits ?? []) {
    cols.push({ key: `wer.${s}`, header: `WER ${s} %`, digits: 1, paired: true });
    cols.push({ key: `cer.${s}`, header: `CER ${s} %`, digits: 1 });
  }
  if (study.cfg.eval.tts) {
    cols.push({ key: 'tts.wer_gold', header: 'TTS WER vs gold %', digits: 1, paired: true });
    cols.push({ key: 'tts.wer_target', header: 'TTS WER vs target %', digits: 1, paired: true });
  }
  return cols;
}

/** Per-utterance errors behind a paired column, for the test against the baseline. */
function cellFigures(study: Study, cell: Cell, outcomes: Map<string, Outcome>): { columns: Record<string, number | null>; per: Record<string, PerUtt>; status: CellResult['status']; problem?: string; engine?: string } {
  const columns: Record<string, number | null> = {};
  const per: Record<string, PerUtt> = {};
  const stages = [cell.fuse, cell.asr, cell.tts].filter((s) => s !== undefined);
  const failed = stages.map((s) => ({ s, o: outcomes.get(s.id) })).find(({ o }) => isBad(o));
  const summary = readJson(join(cell.fuse.dir, 'summary.json'));
  if (summary) {
    const m = (summary.metrics ?? {}) as Record<string, unknown>;
    columns.aligned_hours = num(summary.aligned_hours);
    columns.best_step = num(summary.best_step);
    for (const k of ['dev_asr_loss', 'gap_asr', 'dev_tts_loss', 'gap_tts']) columns[k] = num(m[k]);
  }
  if (cell.asr) {
    for (const s of study.cfg.eval.asr!.splits) {
      const r = readJson(join(cell.asr.dir, s, 'summary.json'));
      columns[`wer.${s}`] = r ? pct(r.wer) : null;
      columns[`cer.${s}`] = r ? pct(r.cer) : null;
      if (r) per[`wer.${s}`] = r.per_utterance as PerUtt;
    }
  }
  if (cell.tts) {
    const r = readJson(join(cell.tts.dir, study.cfg.eval.tts!.split, 'summary.json'));
    columns['tts.wer_gold'] = r ? pct(r.wer_gold) : null;
    columns['tts.wer_target'] = r ? pct(r.wer_target) : null;
    if (r) {
      const pu = r.per_utterance as { id: string; errors_gold: number; errors_target: number | null }[];
      per['tts.wer_gold'] = pu.map((u) => ({ id: u.id, errors: u.errors_gold }));
      // A judge that heard nothing in the gold units leaves no target to test against (null).
      if (pu.every((u) => typeof u.errors_target === 'number')) per['tts.wer_target'] = pu.map((u) => ({ id: u.id, errors: u.errors_target! }));
    }
  }
  const engine = typeof summary?.engine === 'string' ? summary.engine : undefined;
  const complete = stages.every((s) => s.done());
  if (complete) return { columns, per, status: 'done', engine };
  if (failed) {
    const o = failed.o!;
    const problem = o.state === 'failed' ? `${failed.s.id} failed (log: ${o.log})` : o.state === 'cancelled' ? `${failed.s.id} cancelled: ${o.reason} (log: ${o.log})` : `${failed.s.id} skipped: ${o.state === 'skipped' ? o.reason : ''}`;
    return { columns, per, engine, status: o.state === 'cancelled' ? 'cancelled' : 'failed', problem };
  }
  return { columns, per, engine, status: 'missing', problem: `not run: ${stages.filter((s) => !s.done()).map((s) => s.id).join(', ')}` };
}

export function gatherResults(study: Study, graph: StudyGraph, outcomes: Map<string, Outcome>): TableResult[] {
  const cols = columnsOf(study).filter((c) => c.paired);
  return study.cfg.tables.map((t) => {
    const figs = graph.cells.filter((c) => c.table === t.name).map((c) => ({ cell: c, ...cellFigures(study, c, outcomes) }));
    const base = figs.find((f) => f.cell.label === t.baseline);
    const cells: CellResult[] = figs.map((f) => {
      const p: Record<string, number> = {};
      if (base && f !== base) {
        for (const c of cols) {
          const a = f.per[c.key];
          const b = base.per[c.key];
          if (a && b) p[c.key] = wilcoxonSignedRank(...pairById(a, b, `table ${t.name}, ${c.key}: ${f.cell.label} vs ${base.cell.label}`)).pValue;
        }
      }
      return { table: t.name, label: f.cell.label, values: f.cell.values, run: relative(study.results, f.cell.fuse.dir), status: f.status, engine: f.engine, problem: f.problem, columns: f.columns, p };
    });
    const tts = figs.map((f) => f.cell.tts).find((s) => s?.done());
    let oracle: TableResult['oracle'];
    if (tts) {
      const r = readJson(join(tts.dir, study.cfg.eval.tts!.split, 'summary.json'))!;
      oracle = { wer_gold: 100 * (r.wer_oracle as number), utterances: (r.per_utterance as unknown[]).length };
    }
    return { name: t.name, title: t.title, baseline: t.baseline, cells, oracle };
  });
}

export const isComplete = (tables: readonly TableResult[]) => tables.every((t) => t.cells.every((c) => c.status === 'done'));
