import type { ModelFn } from '../engine/engine.js';
import type { Ops } from '../engine/ops.js';
import type { KV } from './attention.js';

/**
 * Inference functions shared by models (ModelDef.functions): how decoders move and read the
 * tensors an engine keeps between calls.
 */

/** Every input but `rows` [B'] int32 with its rows picked by `rows`, as `gathered_<name>` (beam search). */
export const gatherRows: ModelFn = (ops, _p, b) => {
  const rows = b.rows;
  if (rows === undefined) throw new Error('gather needs "rows"');
  const n = ops.shape(rows)[0]!;
  return Object.fromEntries(
    Object.entries(b)
      .filter(([k]) => k !== 'rows')
      .map(([k, t]) => {
        const [B, ...rest] = ops.shape(t);
        const flat = ops.reshape(t, [B!, rest.reduce((a, x) => a * x, 1)]);
        return [`gathered_${k}`, ops.reshape(ops.embedding(flat, rows), [n, ...rest])];
      }),
  );
};

/** `past_k<i>`, `past_v<i>` for layers 0..L-1 of a step function's inputs. */
export function pastOf<T>(b: Record<string, T>, layers: number, fn: string): KV<T>[] {
  return Array.from({ length: layers }, (_, i) => {
    const k = b[`past_k${i}`];
    const v = b[`past_v${i}`];
    if (k === undefined || v === undefined) throw new Error(`${fn} has no input "past_k${i}"/"past_v${i}"`);
    return { k, v };
  });
}

/**
 * The keys/values a step added after `past` positions (a step's outputs: the decoder writes them
 * into its kept cache in place), as `new_k<i>`, `new_v<i>`.
 */
export function newEntries<T>(ops: Ops<T>, cache: readonly KV<T>[], past: number): Record<string, T> {
  const r: Record<string, T> = {};
  cache.forEach((kv, i) => {
    const n = ops.shape(kv.k)[2]! - past;
    r[`new_k${i}`] = ops.slice(kv.k, 2, past, n);
    r[`new_v${i}`] = ops.slice(kv.v, 2, past, n);
  });
  return r;
}

/** Each layer's keys/values as outputs `k<i>`, `v<i>`. */
export function cacheOutputs<T>(cache: readonly KV<T>[], prefix = ''): Record<string, T> {
  const r: Record<string, T> = {};
  cache.forEach((kv, i) => {
    r[`${prefix}k${i}`] = kv.k;
    r[`${prefix}v${i}`] = kv.v;
  });
  return r;
}

/** Last column of logits [B, S, V] -> [B, V]. */
export function lastColumn<T>(ops: Ops<T>, logits: T): T {
  const [B, S, V] = ops.shape(logits) as [number, number, number];
  return ops.reshape(ops.slice(logits, 1, S - 1, 1), [B, V]);
}
