import type { Ops } from '../engine/ops.js';
import type { Modality, TowerShape } from '../config/schema.js';
import { attend, attentionSpecs, projectKV, type KV } from './attention.js';
import { layerNorm, layerNormSpecs, linear, linearSpecs, mlp, mlpSpecs, param } from './layers.js';
import type { ParamSpec, Params } from './params.js';
import { towerBlock, towerEmbed, towerHead, towerSpecs } from './tower.js';

/**
 * The Zipper (paper section 3): two pretrained decoder towers, text and speech, composed by gated
 * cross-attention in both directions. Tower weights keep their pretraining names under `text.` and
 * `speech.`; every new layer lives under `zip.<modality>.`, so freezing a tower is a name prefix.
 *
 * - Input projection: h0 = ReLU(MLP(embed(x))) after each tower's token + position embedding.
 * - Zipped layers: with N of them, tower A's layer n * floor(L_A / N) (1-based) is paired with B's
 *   layer n * floor(L_B / N), n = 1..N. After both towers have run up to their paired layers, each
 *   cross-attends to the other's states at that point (the two updates use the states from before
 *   either, so the result does not depend on which tower goes first).
 * - Each cross layer: h = ReLU(g(m_other)) (g an MLP from the other tower's width; with
 *   `context_norm`, ReLU(g(LN(m_other))); with no projection layers, m_other or LN(m_other)),
 *   then Flamingo's x += tanh(a_attn) * XAttn(LN(x), h); x += tanh(a_ff) * FF(LN(x)), gates
 *   from `gate_init`.
 * - Masking is the caller's (src/data/zip-batch.ts): a position cross-attends only to the other
 *   modality's tokens that come before it in the interleaved sequence. A position that sees none
 *   gets an exact zero from cross-attention (`xgate` 0): a softmax over nothing but masked keys
 *   would average every key, future ones included.
 */

export const MODALITIES = ['text', 'speech'] as const satisfies readonly Modality[];
export const otherModality = (m: Modality): Modality => (m === 'text' ? 'speech' : 'text');

/** What the zipper's shape adds to its two towers' (config `zip`, see src/config/fuse-schema.ts). */
export interface ZipperLayout {
  /** Number of zipped layer pairs N. */
  layers: number;
  /** ReLU(MLP(.)) after each tower's embedding, per tower. */
  input_projection: Record<Modality, boolean>;
  /** Linear layers in an input projection (3 in the paper). */
  input_projection_layers: number;
  /** Linear layers in the projection g from the other tower's width (0: none, towers of one width). */
  context_projection_layers: number;
  /**
   * LayerNorm on the other tower's states before g. Ours: those states are a pre-LN residual
   * stream, whose scale grows with depth and differs between towers; Flamingo's media reach its
   * cross-attention normalised (the Perceiver resampler ends in a LayerNorm).
   */
  context_norm: boolean;
  /** Initial value of every tanh gate (the paper: 0, a fresh zip is exactly the two towers). */
  gate_init: number;
  /** Std of the cross-attention's q/k/v weights: GPT-2's 0.02, or 1/sqrt(d) (Xavier). */
  cross_init: 'gpt2' | 'xavier';
}

export interface ZipperShape extends ZipperLayout {
  text: TowerShape;
  speech: TowerShape;
}

/** 0-based block index after which each zipped layer cross-attends, per tower, in pair order. */
export function zippedLayers(z: ZipperShape): Record<Modality, number[]> {
  const at = (L: number) => {
    if (!(Number.isInteger(z.layers) && z.layers >= 1 && z.layers <= L)) throw new Error(`zip.layers ${z.layers} is not in 1..${L} (the shallower tower's n_layers)`);
    const every = Math.floor(L / z.layers);
    return Array.from({ length: z.layers }, (_, n) => (n + 1) * every - 1);
  };
  return { text: at(z.text.n_layers), speech: at(z.speech.n_layers) };
}

/** He-normal: keeps activations' scale through ReLU layers (the paper does not give an init). */
const heSpecs = (name: string, dIn: number, dOut: number) => linearSpecs(name, dIn, dOut, Math.sqrt(2 / dIn));

export function zipperSpecs(z: ZipperShape): ParamSpec[] {
  zippedLayers(z); // validates z.layers
  if (z.context_projection_layers === 0 && z.text.d_model !== z.speech.d_model)
    throw new Error(`zip.context_projection_layers 0 reads the other tower's states as they are, which needs towers of one width (text ${z.text.d_model}, speech ${z.speech.d_model}): set it to 1 or more`);
  const specs: ParamSpec[] = MODALITIES.flatMap((m) => towerSpecs(z[m]).map((s) => ({ ...s, name: `${m}.${s.name}` })));
  for (const m of MODALITIES) {
    const c = z[m];
    const d = c.d_model;
    const dOther = z[otherModality(m)].d_model;
    if (z.input_projection[m]) for (let j = 0; j < z.input_projection_layers; j++) specs.push(...heSpecs(`zip.${m}.in_proj.${j}`, d, d));
    const outStd = 0.02 / Math.sqrt(2 * c.n_layers);
    for (let n = 0; n < z.layers; n++) {
      const x = `zip.${m}.x.${n}`;
      if (z.context_norm) specs.push(...layerNormSpecs(`${x}.ctx_ln`, dOther));
      for (let j = 0; j < z.context_projection_layers; j++) specs.push(...heSpecs(`${x}.ctx_proj.${j}`, j === 0 ? dOther : d, d));
      specs.push(
        ...layerNormSpecs(`${x}.ln_1`, d),
        ...attentionSpecs(`${x}.attn`, d, outStd, z.cross_init === 'xavier' ? 1 / Math.sqrt(d) : 0.02),
        { name: `${x}.attn_gate`, shape: [1], init: { kind: 'constant', value: z.gate_init } },
        ...layerNormSpecs(`${x}.ln_2`, d),
        ...mlpSpecs(`${x}.mlp`, d, c.ff_mult * d, outStd),
        { name: `${x}.ff_gate`, shape: [1], init: { kind: 'constant', value: z.gate_init } },
      );
    }
  }
  return specs;
}

/** The parameters under `prefix`, with the prefix taken off (a tower's own names). */
export function scoped<T>(p: Params<T>, prefix: string): Params<T> {
  const out: Params<T> = {};
  for (const [k, v] of Object.entries(p)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/** ReLU after every linear layer of a chain (the paper's "MLP + ReLU" projections). */
function reluChain<T>(ops: Ops<T>, p: Params<T>, name: string, layers: number, x: T): T {
  for (let j = 0; j < layers; j++) x = ops.relu(linear(ops, p, `${name}.${j}`, x));
  return x;
}

/** One tower's inputs to a zipped forward pass. */
export interface ZipTowerInput<T> {
  ids: T;
  positions: T;
  /** Additive self-attention mask, broadcastable to [B, H, S, P + S]. */
  mask: T;
  /** Additive cross-attention mask over the other tower's positions, [B, 1, S, S_other]. */
  xmask: T;
  /** 1 where a position sees at least one of the other tower's tokens, else 0: [B, S, 1]. */
  xgate: T;
}

function embedIn<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, m: Modality, inp: ZipTowerInput<T>): T {
  const e = towerEmbed(ops, scoped(p, `${m}.`), inp.ids, inp.positions);
  return z.input_projection[m] ? reluChain(ops, p, `zip.${m}.in_proj`, z.input_projection_layers, e) : e;
}

/** Keys/values of zipped layer n of tower m over the other tower's states `other` [B, S_o, d_o]. */
export function crossKV<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, m: Modality, n: number, other: T): KV<T> {
  const x = `zip.${m}.x.${n}`;
  const ctx = z.context_norm ? layerNorm(ops, p, `${x}.ctx_ln`, other) : other;
  return projectKV(ops, p, `${x}.attn`, reluChain(ops, p, `${x}.ctx_proj`, z.context_projection_layers, ctx), z[m].n_heads);
}

/** Flamingo's gated cross-attention and gated feed-forward over precomputed keys/values. */
export function crossBlock<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, m: Modality, n: number, x: T, kv: KV<T>, xmask: T, xgate: T): T {
  const name = `zip.${m}.x.${n}`;
  const a = ops.mul(attend(ops, p, `${name}.attn`, layerNorm(ops, p, `${name}.ln_1`, x), kv, xmask, z[m].n_heads), xgate);
  const x1 = ops.add(x, ops.mul(ops.tanh(param(p, `${name}.attn_gate`)), a));
  return ops.add(x1, ops.mul(ops.tanh(param(p, `${name}.ff_gate`)), mlp(ops, p, `${name}.mlp`, layerNorm(ops, p, `${name}.ln_2`, x1))));
}

export interface ZipperOutputs<T> {
  logits: Record<Modality, T>;
  /** Each tower's self-attention keys/values per layer (a KV cache). */
  cache: Record<Modality, KV<T>[]>;
  /** Each tower's cross-attention keys/values per zipped layer (fixed while the other waits). */
  cross: Record<Modality, KV<T>[]>;
}

/** Both towers over full sequences: logits [B, S_m, V_m] per tower. */
export function zipperForward<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, inp: Record<Modality, ZipTowerInput<T>>): ZipperOutputs<T> {
  const tp = { text: scoped(p, 'text.'), speech: scoped(p, 'speech.') };
  const x = { text: embedIn(ops, p, z, 'text', inp.text), speech: embedIn(ops, p, z, 'speech', inp.speech) };
  const out: ZipperOutputs<T> = { logits: {} as Record<Modality, T>, cache: { text: [], speech: [] }, cross: { text: [], speech: [] } };
  const next = { text: 0, speech: 0 };
  const runTo = (m: Modality, last: number) => {
    for (; next[m] <= last; next[m]++) {
      const r = towerBlock(ops, tp[m], z[m], next[m], x[m], inp[m].mask);
      x[m] = r.x;
      out.cache[m].push(r.kv);
    }
  };
  const pairs = zippedLayers(z);
  for (let n = 0; n < z.layers; n++) {
    for (const m of MODALITIES) runTo(m, pairs[m][n]!);
    const before = { ...x };
    for (const m of MODALITIES) {
      const kv = crossKV(ops, p, z, m, n, before[otherModality(m)]);
      out.cross[m].push(kv);
      x[m] = crossBlock(ops, p, z, m, n, before[m], kv, inp[m].xmask, inp[m].xgate);
    }
  }
  for (const m of MODALITIES) {
    runTo(m, z[m].n_layers - 1);
    out.logits[m] = towerHead(ops, tp[m], x[m]);
  }
  return out;
}

/** One tower's inputs to a decoding step: new tokens after `past`, the other tower fixed. */
export interface ZipStepInput<T> {
  ids: T;
  positions: T;
  /** Additive mask over (cached, new) self-attention keys. */
  mask: T;
  /** Additive mask over the other tower's positions, and the has-context factor. */
  xmask: T;
  xgate: T;
}

/**
 * Tower m alone on new tokens, with its self-attention cache and the cross keys/values a prefill
 * computed from the other tower. Exact while the other tower gets no new tokens: its states at
 * every position depend only on tokens before them, all already there.
 */
export function zipperStep<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, m: Modality, inp: ZipStepInput<T>, past: readonly KV<T>[], cross: readonly KV<T>[]): { logits: T; cache: KV<T>[] } {
  const tp = scoped(p, `${m}.`);
  let x = embedIn(ops, p, z, m, inp);
  const pairs = zippedLayers(z)[m];
  const cache: KV<T>[] = [];
  let n = 0;
  for (let i = 0; i < z[m].n_layers; i++) {
    const r = towerBlock(ops, tp, z[m], i, x, inp.mask, past[i]);
    x = r.x;
    cache.push(r.kv);
    if (pairs[n] === i) {
      x = crossBlock(ops, p, z, m, n, x, cross[n]!, inp.xmask, inp.xgate);
      n++;
    }
  }
  return { logits: towerHead(ops, tp, x), cache };
}
