import type { Ops } from '../engine/ops.js';
import { linear, linearSpecs } from './layers.js';
import type { ParamSpec, Params } from './params.js';

/** Keys and values of earlier positions, [B, H, P, d_head] each: the KV cache of one layer. */
export interface KV<T> {
  k: T;
  v: T;
}

export const attentionSpecs = (name: string, d: number, outStd: number, inStd = 0.02): ParamSpec[] => [
  ...linearSpecs(`${name}.q_proj`, d, d, inStd),
  ...linearSpecs(`${name}.k_proj`, d, d, inStd),
  ...linearSpecs(`${name}.v_proj`, d, d, inStd),
  ...linearSpecs(`${name}.o_proj`, d, d, outStd),
];

/** Splits [B, L, d] into heads: [B, H, L, d / H]. */
function heads<T>(ops: Ops<T>, t: T, nHeads: number): T {
  const [B, L, d] = ops.shape(t) as [number, number, number];
  return ops.transpose(ops.reshape(t, [B, L, nHeads, d / nHeads]), [0, 2, 1, 3]);
}

/** Keys and values of `ctx` [B, T, d] for attention layer `name`, [B, H, T, d_head] each. */
export function projectKV<T>(ops: Ops<T>, p: Params<T>, name: string, ctx: T, nHeads: number): KV<T> {
  return { k: heads(ops, linear(ops, p, `${name}.k_proj`, ctx), nHeads), v: heads(ops, linear(ops, p, `${name}.v_proj`, ctx), nHeads) };
}

/**
 * Queries from `x` [B, S, d] over given keys/values [B, H, T, d_head]; `mask` is additive (0 or a
 * large negative number) and broadcasts to [B, H, S, T].
 */
export function attend<T>(ops: Ops<T>, p: Params<T>, name: string, x: T, kv: KV<T>, mask: T | null, nHeads: number): T {
  const [B, S, d] = ops.shape(x) as [number, number, number];
  const dh = d / nHeads;
  const q = heads(ops, linear(ops, p, `${name}.q_proj`, x), nHeads);
  const T = ops.shape(kv.k)[2]!;
  let scores = ops.matMul(ops.reshape(q, [B * nHeads, S, dh]), ops.reshape(kv.k, [B * nHeads, T, dh]), false, true);
  scores = ops.mul(ops.reshape(scores, [B, nHeads, S, T]), ops.scalar(1 / Math.sqrt(dh)));
  if (mask) scores = ops.add(scores, mask);
  const probs = ops.softmax(scores);
  const ctxOut = ops.matMul(ops.reshape(probs, [B * nHeads, S, T]), ops.reshape(kv.v, [B * nHeads, T, dh]));
  const merged = ops.reshape(ops.transpose(ops.reshape(ctxOut, [B, nHeads, S, dh]), [0, 2, 1, 3]), [B, S, d]);
  return linear(ops, p, `${name}.o_proj`, merged);
}

/**
 * Multi-head scaled dot-product attention of queries from `x` [B, S, d] over keys/values from
 * `ctx` [B, T, d]. Self-attention passes ctx = x; the zipper's cross-attention passes the other
 * tower's (projected) states, so both are these functions. `past` holds cached keys/values that
 * come before ctx's. Returns the output and the keys/values including ctx's (the new cache).
 */
export function attention<T>(
  ops: Ops<T>,
  p: Params<T>,
  name: string,
  x: T,
  ctx: T,
  mask: T | null,
  nHeads: number,
  past?: KV<T>,
): { out: T; kv: KV<T> } {
  let { k, v } = projectKV(ops, p, name, ctx, nHeads);
  if (past) {
    k = ops.concat([past.k, k], 2);
    v = ops.concat([past.v, v], 2);
  }
  return { out: attend(ops, p, name, x, { k, v }, mask, nHeads), kv: { k, v } };
}

/** Large enough to zero a softmax weight, small enough to stay finite in float32 sums. */
export const MASKED = -1e9;

/**
 * Additive causal mask [S, P + S] for S new positions after P cached ones: position i may see
 * keys 0..P+i.
 */
export function causalMask(S: number, P = 0): Float32Array {
  const m = new Float32Array(S * (P + S));
  for (let i = 0; i < S; i++) for (let j = P + i + 1; j < P + S; j++) m[i * (P + S) + j] = MASKED;
  return m;
}
