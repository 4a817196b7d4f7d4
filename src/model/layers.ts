import type { Ops } from '../engine/ops.js';
import type { ParamSpec, Params } from './params.js';

/**
 * Building blocks shared by every model in the toolkit (towers now; the zipper's cross-attention
 * and the single-decoder baseline reuse them). Hidden states are [B, S, d]; weights are stored
 * [in, out] (as GPT-2's Conv1D; transpose for torch.nn.Linear).
 */

export const linearSpecs = (name: string, dIn: number, dOut: number, std = 0.02): ParamSpec[] => [
  { name: `${name}.weight`, shape: [dIn, dOut], init: { kind: 'normal', std } },
  { name: `${name}.bias`, shape: [dOut], init: { kind: 'zeros' } },
];

export const layerNormSpecs = (name: string, d: number): ParamSpec[] => [
  { name: `${name}.weight`, shape: [d], init: { kind: 'ones' } },
  { name: `${name}.bias`, shape: [d], init: { kind: 'zeros' } },
];

/** x [..., dIn] @ W + b, computed as one 2-D product (the fast path on every backend). */
export function linear<T>(ops: Ops<T>, p: Params<T>, name: string, x: T): T {
  const shape = ops.shape(x);
  const w = param(p, `${name}.weight`);
  const dOut = ops.shape(w)[1]!;
  const rows = shape.slice(0, -1);
  const y = ops.add(ops.matMul(ops.reshape(x, [rows.reduce((a, b) => a * b, 1), shape.at(-1)!]), w), param(p, `${name}.bias`));
  return ops.reshape(y, [...rows, dOut]);
}

export function layerNorm<T>(ops: Ops<T>, p: Params<T>, name: string, x: T, eps = 1e-5): T {
  return ops.layerNorm(x, param(p, `${name}.weight`), param(p, `${name}.bias`), eps);
}

export const mlpSpecs = (name: string, d: number, dHidden: number, outStd: number): ParamSpec[] => [
  ...linearSpecs(`${name}.fc_in`, d, dHidden),
  ...linearSpecs(`${name}.fc_out`, dHidden, d, outStd),
];

/** The transformer feed-forward: GELU(x W1 + b1) W2 + b2. */
export function mlp<T>(ops: Ops<T>, p: Params<T>, name: string, x: T): T {
  return linear(ops, p, `${name}.fc_out`, ops.gelu(linear(ops, p, `${name}.fc_in`, x)));
}

export function param<T>(p: Params<T>, name: string): T {
  const t = p[name];
  if (t === undefined) throw new Error(`missing parameter "${name}"`);
  return t;
}
