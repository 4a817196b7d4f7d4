import type { Ops } from '../engine/ops.js';
import { linear, linearSpecs } from './layers.js';
import type { ParamSpec, Params } from './params.js';

/** Keys and values of earlier positions, [B, H, P, d_head] each: the KV cache of one layer. */
export interface KV<T> {
  k: T;
  v: T;
}

export const attentionSpecs = (name: string, d: number, outStd: number): ParamSpec[] => [
  ...linearSpecs(`${name}.q_proj`, d, d),
  ...linearSpecs(`${name}.k_proj`, d, d),
  ...linearSpecs(`${name}.v_proj`, d, d),
  ...linearSpecs(`${name}.o_proj`, d, d, outStd),
];

/**
 * Multi-head scaled dot-product attention of queries from `x` [B, S, d] over keys/values from
 * `ctx` [B, T, d]. Self-attention passes ctx = x; the zipper's cross-attention passes the other
 * tower's (projected) states, so both are this one function. `mask` is additive (0 or a large
 * negative number) and broadcasts to [B, H, S, P + T]; `past` holds cached keys/values that come
 * before ctx's. Returns the output and the keys/values including ctx's (the new cache).
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
  const [B, S, d] = ops.shape(x) as [number, number, number];
  const T = ops.shape(ctx)[1]!;
  const dh = d / nHeads;
  const heads = (t: T, len: number) => ops.transpose(ops.reshape(t, [B, len, nHeads, dh]), [0, 2, 1, 3]);
  const q = heads(linear(ops, p, `${name}.q_proj`, x), S);
  let k = heads(linear(ops, p, `${name}.k_proj`, ctx), T);
  let v = heads(linear(ops, p, `${name}.v_proj`, ctx), T);
  if (past) {
    k = ops.concat([past.k, k], 2);
    v = ops.concat([past.v, v], 2);
  }
  let scores = ops.matMul(ops.reshape(q, [B * nHeads, S, dh]), ops.reshape(k, [B * nHeads, ops.shape(k)[2]!, dh]), false, true);
  scores = ops.mul(ops.reshape(scores, [B, nHeads, S, ops.shape(k)[2]!]), ops.scalar(1 / Math.sqrt(dh)));
  if (mask) scores = ops.add(scores, mask);
  const probs = ops.softmax(scores);
  const ctxOut = ops.matMul(ops.reshape(probs, [B * nHeads, S, ops.shape(k)[2]!]), ops.reshape(v, [B * nHeads, ops.shape(v)[2]!, dh]));
  const merged = ops.reshape(ops.transpose(ops.reshape(ctxOut, [B, nHeads, S, dh]), [0, 2, 1, 3]), [B, S, d]);
  return { out: linear(ops, p, `${name}.o_proj`, merged), kv: { k, v } };
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
