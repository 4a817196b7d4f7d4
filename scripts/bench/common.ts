/**
 * What every part of the benchmark shares: the model sizes, the synthetic batch and weights, the
 * one timing helper, medians, the machine line and the one table printer.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { TowerShape } from '../../src/config/schema.js';
import type { HostBatch } from '../../src/engine/engine.js';
import { lmBatch } from '../../src/data/lm.js';
import { initParams } from '../../src/model/params.js';
import { towerSpecs } from '../../src/model/tower.js';
import { Rng } from '../../src/util/rng.js';

/** The reference tower of ENGINE.md; `d` overrides the width (4 heads either way). */
export function towerShape(d = 128): TowerShape {
  return { d_model: d, n_layers: 4, n_heads: 4, ff_mult: 4, max_len: 128, vocab_size: 512 };
}
export const SEQ = 128;
export const BATCH = 16;
export const TOKENS = SEQ * BATCH;
export const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1 };
export const LR = 1e-3;

/** Rows of SEQ + 1 random tokens (ids 3.. as the tokenizers reserve 0-2), the same every call. */
export function benchRows(vocab: number): Int32Array[] {
  const rng = new Rng(1);
  return Array.from({ length: BATCH }, () => Int32Array.from({ length: SEQ + 1 }, () => 3 + rng.int(vocab - 3)));
}
export const benchBatch = (vocab: number): HostBatch => lmBatch(benchRows(vocab));
/** The same initial weights for every engine (the toolkit's seeded initialisation). */
export const benchWeights = (shape: TowerShape): Map<string, Float32Array> => initParams(towerSpecs(shape), 0);

/** Seconds of each of `n` calls after `warmup` untimed ones; also the last call's result. */
export async function timeCalls<R>(n: number, warmup: number, fn: () => Promise<R>): Promise<{ times: number[]; last: R }> {
  const times: number[] = [];
  let last!: R;
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    last = await fn();
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  return { times, last };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface Machine {
  cpu: string;
  cores: number;
  flags: string[];
  node: string;
  loadavg: string;
}

export function machine(): Machine {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const all = (info.match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '').split(' ');
  const flags = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'amx_tile'].filter((f) => all.includes(f));
  return { cpu: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, flags, node: process.version, loadavg: loadAverage() };
}

export type Cell = string | number | null | undefined;

/** A markdown table; numbers are rounded to whole units, null/undefined print as "-". */
export function printTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const fmt = (c: Cell) => (c === null || c === undefined ? '-' : typeof c === 'number' ? (Number.isFinite(c) ? c.toFixed(0) : '-') : c);
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`|${headers.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.map(fmt).join(' | ')} |`);
}

export const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0 ? `${a / b >= 0.1 ? (a / b).toFixed(2) : (a / b).toPrecision(2)}x` : '-';

/** "met" / "NOT met" / "-" (a side missing) for a ratio against its target. */
export const verdict = (a: number | null | undefined, b: number | null | undefined, target: number): string =>
  typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0 ? (a / b >= target ? 'met' : 'NOT met') : '- (not measured)';

export function firstLine(e: unknown): string {
  return ((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '').slice(0, 200);
}
