// Plots as SVG files a person can open in any browser: the study's plots (a result column against a
// cell value, one line per series, e.g. WER against the aligned fraction) and each table's dev-loss
// curves. Drawn by Vega-Lite (compiled to Vega, rendered headless to SVG: no canvas, no browser).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { writeFileAtomic } from '../util/fs.js';
import { columnsOf, type TableResult } from './results.js';
import { formatValue, type Study } from './study.js';

async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

interface Point {
  x: number;
  y: number;
  series: string;
}

/** The points of one study plot: a finished cell with a numeric x and a y gives a point. */
export function plotPoints(study: Study, tables: readonly TableResult[], name: string): Point[] {
  const p = study.cfg.plots.find((q) => q.name === name)!;
  const t = tables.find((q) => q.name === p.table)!;
  const out: Point[] = [];
  for (const c of t.cells) {
    const x = c.values[p.x];
    const y = c.columns[p.y];
    if (c.status !== 'done' || typeof x !== 'number' || typeof y !== 'number') continue;
    out.push({ x, y, series: p.series ? formatValue(c.values[p.series] ?? '(default)') : 'all' });
  }
  return out.sort((a, b) => a.series.localeCompare(b.series) || a.x - b.x);
}

/** Dev losses logged by a fine-tuning run: one point per evaluation. */
function devCurve(run: string, key: string): { step: number; loss: number }[] {
  const f = join(run, 'metrics.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .filter((m) => m.kind === 'dev' && typeof m[key] === 'number')
    .map((m) => ({ step: m.step as number, loss: m[key] as number }));
}

export async function writePlots(study: Study, tables: readonly TableResult[]): Promise<string[]> {
  const files: string[] = [];
  const headers = new Map(columnsOf(study).map((c) => [c.key, c.header]));
  for (const p of study.cfg.plots) {
    const values = plotPoints(study, tables, p.name);
    const svg = await renderSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `${headers.get(p.y) ?? p.y} against ${p.x}`,
      width: 420,
      height: 280,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: p.x, scale: p.log_x ? { type: 'log' } : { zero: false } },
        y: { field: 'y', type: 'quantitative', title: headers.get(p.y) ?? p.y, scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: p.series ?? '', legend: { labelLimit: 0 } },
      },
    });
    const f = join(study.results, `${p.name}.svg`);
    await writeFileAtomic(f, svg);
    files.push(f);
  }
  for (const t of tables) {
    for (const key of ['dev_asr_loss', 'dev_tts_loss']) {
      const values = t.cells.flatMap((c) => devCurve(join(study.results, c.run), key).map((d) => ({ ...d, cell: c.label })));
      if (!values.length) continue;
      const svg = await renderSvg({
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: `${t.title || t.name}: ${key.replace(/_/g, ' ')} by step`,
        width: 420,
        height: 280,
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y: { field: 'loss', type: 'quantitative', title: `${key.replace(/_/g, ' ')} (nats/token)`, scale: { zero: false } },
          color: { field: 'cell', type: 'nominal', title: 'cell', legend: { labelLimit: 0 } },
        },
      });
      const f = join(study.results, `${t.name}-${key.replace(/_/g, '-')}.svg`);
      await writeFileAtomic(f, svg);
      files.push(f);
    }
  }
  return files;
}
