import type { Ops } from '../engine/ops.js';

/**
 * Adam/AdamW and global-norm clipping, written once against the tensor-op interface so the tfjs
 * engine runs it eagerly and the ONNX engine records it into the training graph.
 *
 * Bias correction uses the Adam paper's efficient form (section 2): the host folds it into a step
 * size alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t) and eps_t = eps * sqrt(1 - b2^t), so the graph
 * needs no step-dependent constants: p -= alpha_t * m / (sqrt(v) + eps_t) + lr * wd * p.
 */
export interface AdamScalars<T> {
  alpha: T;
  eps: T;
  /** lr * weight_decay: AdamW's decoupled decay, applied to matrices only. */
  decay: T;
}

export interface AdamHyper {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

/** Host-side scalars for optimizer step `t` (1-based). */
export function adamScalars(h: AdamHyper, t: number): { alpha: number; eps: number; decay: number } {
  const c2 = Math.sqrt(1 - h.betas[1] ** t);
  return { alpha: (h.lr * c2) / (1 - h.betas[0] ** t), eps: h.eps * c2, decay: h.lr * h.weightDecay };
}

/** The scalars of a parameter group whose learning rate is `k` times the schedule's. */
export function scaleAdam<T>(ops: Ops<T>, s: AdamScalars<T>, k: number): AdamScalars<T> {
  if (k === 1) return s;
  return { alpha: ops.mul(s.alpha, ops.scalar(k)), eps: s.eps, decay: ops.mul(s.decay, ops.scalar(k)) };
}

/** One parameter's update. `decayed` says whether weight decay applies (rank >= 2 tensors). */
export function adamUpdate<T>(
  ops: Ops<T>,
  betas: readonly [number, number],
  s: AdamScalars<T>,
  p: T,
  g: T,
  m: T,
  v: T,
  decayed: boolean,
): { p: T; m: T; v: T } {
  const [b1, b2] = betas;
  const m1 = ops.add(ops.mul(m, ops.scalar(b1)), ops.mul(g, ops.scalar(1 - b1)));
  const v1 = ops.add(ops.mul(v, ops.scalar(b2)), ops.mul(ops.mul(g, g), ops.scalar(1 - b2)));
  let step = ops.mul(s.alpha, ops.div(m1, ops.add(ops.sqrt(v1), s.eps)));
  if (decayed) step = ops.add(step, ops.mul(s.decay, p));
  return { p: ops.sub(p, step), m: m1, v: v1 };
}

/**
 * Global gradient norm and the factor that clips it to `maxNorm`:
 * scale = maxNorm / max(norm, maxNorm), i.e. 1 when the norm is already small enough.
 */
export function clipByGlobalNorm<T>(ops: Ops<T>, grads: readonly T[], maxNorm: number): { norm: T; scale: T | null } {
  let sq = ops.sum(ops.mul(grads[0]!, grads[0]!));
  for (const g of grads.slice(1)) sq = ops.add(sq, ops.sum(ops.mul(g, g)));
  const norm = ops.sqrt(sq);
  if (maxNorm <= 0) return { norm, scale: null };
  const limit = ops.scalar(maxNorm);
  return { norm, scale: ops.div(limit, ops.maximum(norm, limit)) };
}
