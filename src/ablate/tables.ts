// Results tables as Markdown (to read), CSV (to load into anything) and JSON (everything, with the
// environment and the command). A partial table (cells failed or not run) never replaces a complete
// one: it goes to results.partial.* and says which cells are missing.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EnvironmentRecord } from '../run/env.js';
import { writeFileAtomic } from '../util/fs.js';
import { columnsOf, isComplete, type TableResult } from './results.js';
import { formatValue, type Study } from './study.js';

/** The significance level that earns a mark in the tables. */
export const ALPHA = 0.05;

export interface TableRecord {
  study: string;
  command: string;
  date: string;
  environment: unknown;
  complete: boolean;
}

/** Keys that vary within a table (or are set on it): its cells' distinguishing columns. */
function valueKeys(t: TableResult): string[] {
  return [...new Set(t.cells.flatMap((c) => Object.keys(c.values)))];
}

const fmt = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '-' : x.toFixed(digits));

export function markdown(study: Study, tables: readonly TableResult[], rec: TableRecord): string {
  const cols = columnsOf(study);
  const out: string[] = [`# ${study.cfg.name}${rec.complete ? '' : ' (PARTIAL: some cells are missing)'}`, ''];
  if (study.cfg.description) out.push(study.cfg.description.trim(), '');
  out.push(`Made by \`${rec.command}\` on ${rec.date}.`, '');
  const e = rec.environment as Partial<EnvironmentRecord>;
  if (e.node) out.push(`Environment: ${e.toolkit ? `${e.toolkit.name} ${e.toolkit.version}, ` : ''}git ${e.git ? `${e.git.commit.slice(0, 12)}${e.git.dirty ? ' (dirty)' : ''}` : 'unknown'}, node ${e.node}, ${e.cpu?.model ?? '?'} x${e.cpu?.cores ?? '?'}, ${e.memory_gb ?? '?'} GB.`, '');
  for (const t of tables) {
    out.push(`## ${t.title || t.name}`, '');
    const keys = valueKeys(t);
    out.push(`| cell | ${keys.join(' | ')} | ${cols.map((c) => c.header).join(' | ')} |`);
    out.push(`|${'---|'.repeat(1 + keys.length + cols.length)}`);
    for (const c of t.cells) {
      const mark = (k: string) => (c.p[k] !== undefined && c.p[k]! < ALPHA ? '*' : '');
      // A cell with a stage missing still shows the figures it has (the rest are "-").
      const figs = cols.map((col) => fmt(c.columns[col.key], col.digits) + mark(col.key));
      out.push(`| ${c.label}${c.label === t.baseline ? ' (baseline)' : ''}${c.status === 'done' ? '' : ` (${c.status})`} | ${keys.map((k) => (k in c.values ? formatValue(c.values[k]) : '')).join(' | ')} | ${figs.join(' | ')} |`);
    }
    if (t.oracle) {
      const figs = cols.map((col) => (col.key === 'tts.wer_gold' ? fmt(t.oracle!.wer_gold, col.digits) : col.key === 'tts.wer_target' ? '0.0' : '-'));
      out.push(`| oracle (judge on gold units) | ${keys.map(() => '').join(' | ')} | ${figs.join(' | ')} |`);
    }
    out.push('');
    if (t.baseline) out.push(`\\* p < ${ALPHA} against ${t.baseline} (Wilcoxon signed-rank, two-sided, on per-utterance word errors).`, '');
    const missing = t.cells.filter((c) => c.status !== 'done');
    if (missing.length) out.push('Missing cells:', ...missing.map((c) => `- ${c.label}: ${c.status}${c.problem ? ` (${c.problem})` : ''}`), '');
    out.push('Runs:', ...t.cells.map((c) => `- ${c.label}: \`${c.run}\`${c.engine ? ` (${c.engine})` : ''}`), '');
  }
  return out.join('\n');
}

/** Long format: one row per cell and column, with the p-value against the baseline where tested. */
export function csv(study: Study, tables: readonly TableResult[]): string {
  const cols = columnsOf(study);
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = ['table,cell,status,values,column,value,p_value_vs_baseline,run'];
  for (const t of tables) {
    for (const c of t.cells) {
      const values = Object.entries(c.values).map(([k, v]) => `${k}=${formatValue(v)}`).join(';');
      for (const col of cols) rows.push([t.name, c.label, c.status, values, col.key, c.columns[col.key] ?? '', c.p[col.key] ?? '', c.run].map((x) => q(String(x))).join(','));
    }
    if (t.oracle) rows.push([t.name, 'oracle', 'done', '', 'tts.wer_gold', t.oracle.wer_gold, '', ''].map((x) => q(String(x))).join(','));
  }
  return rows.join('\n') + '\n';
}

/** Writes results.{md,csv,json}, or results.partial.* when cells are missing and a complete table exists. */
export async function writeTables(study: Study, tables: readonly TableResult[], rec: Omit<TableRecord, 'complete'>): Promise<{ files: string[]; complete: boolean }> {
  const complete = isComplete(tables);
  const record: TableRecord = { ...rec, complete };
  const base = !complete && existsSync(join(study.results, 'results.json')) && isCompleteFile(join(study.results, 'results.json')) ? 'results.partial' : 'results';
  const files = [`${base}.md`, `${base}.csv`, `${base}.json`].map((f) => join(study.results, f));
  await writeFileAtomic(files[0]!, markdown(study, tables, record));
  await writeFileAtomic(files[1]!, csv(study, tables));
  await writeFileAtomic(files[2]!, JSON.stringify({ ...record, tables }, null, 2) + '\n');
  if (complete) for (const f of ['md', 'csv', 'json']) rmSync(join(study.results, `results.partial.${f}`), { force: true });
  return { files, complete };
}

export function isCompleteFile(f: string): boolean {
  try {
    return (JSON.parse(readFileSync(f, 'utf8')) as { complete?: boolean }).complete === true;
  } catch {
    return false;
  }
}
