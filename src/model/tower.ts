import type { Ops } from '../engine/ops.js';
import type { TowerShape } from '../config/schema.js';
import { attention, attentionSpecs, type KV } from './attention.js';
import { layerNorm, layerNormSpecs, mlp, mlpSpecs, param } from './layers.js';
import type { ParamSpec, Params } from './params.js';
import type { ModelDef } from '../engine/engine.js';

/**
 * A decoder tower (paper section 3): a pre-LayerNorm GPT-style transformer over one modality's
 * tokens, with learned absolute positions and a softmax tied to its own embedding. Tensor names
 * follow GPT-2/nanoGPT (wte, wpe, h.<i>.ln_1, ...), documented in the README for PyTorch users.
 */
export function towerSpecs(c: TowerShape): ParamSpec[] {
  const d = c.d_model;
  // GPT-2: residual-branch output projections start smaller, scaled by depth.
  const outStd = 0.02 / Math.sqrt(2 * c.n_layers);
  const specs: ParamSpec[] = [
    { name: 'wte.weight', shape: [c.vocab_size, d], init: { kind: 'normal', std: 0.02 } },
    { name: 'wpe.weight', shape: [c.max_len, d], init: { kind: 'normal', std: 0.01 } },
  ];
  for (let i = 0; i < c.n_layers; i++) {
    specs.push(
      ...layerNormSpecs(`h.${i}.ln_1`, d),
      ...attentionSpecs(`h.${i}.attn`, d, outStd),
      ...layerNormSpecs(`h.${i}.ln_2`, d),
      ...mlpSpecs(`h.${i}.mlp`, d, c.ff_mult * d, outStd),
    );
  }
  specs.push(...layerNormSpecs('ln_f', d));
  return specs;
}

/** Token plus position embeddings: ids, positions int32 [B, S] -> [B, S, d]. */
export function towerEmbed<T>(ops: Ops<T>, p: Params<T>, ids: T, positions: T): T {
  return ops.add(ops.embedding(param(p, 'wte.weight'), ids), ops.embedding(param(p, 'wpe.weight'), positions));
}

/** One pre-LN block: x + SelfAttn(LN(x)), then + MLP(LN(x)). Later models interleave around it. */
export function towerBlock<T>(ops: Ops<T>, p: Params<T>, c: TowerShape, i: number, x: T, mask: T | null, past?: KV<T>): { x: T; kv: KV<T> } {
  const h = layerNorm(ops, p, `h.${i}.ln_1`, x);
  const a = attention(ops, p, `h.${i}.attn`, h, h, mask, c.n_heads, past);
  const x1 = ops.add(x, a.out);
  return { x: ops.add(x1, mlp(ops, p, `h.${i}.mlp`, layerNorm(ops, p, `h.${i}.ln_2`, x1))), kv: a.kv };
}

/** Final LayerNorm and the tied softmax projection: [B, S, d] -> logits [B, S, V]. */
export function towerHead<T>(ops: Ops<T>, p: Params<T>, x: T): T {
  const [B, S, d] = ops.shape(x) as [number, number, number];
  const wte = param(p, 'wte.weight');
  const h = ops.reshape(layerNorm(ops, p, 'ln_f', x), [B * S, d]);
  return ops.reshape(ops.matMul(h, wte, false, true), [B, S, ops.shape(wte)[0]!]);
}

export interface TowerInput<T> {
  ids: T;
  positions: T;
  /** Additive attention mask broadcastable to [B, H, S, P + S] (causalMask for plain LM use). */
  mask: T | null;
}

/** Full forward: logits [B, S, V] and each layer's keys/values (the cache for the next step). */
export function towerForward<T>(ops: Ops<T>, p: Params<T>, c: TowerShape, inp: TowerInput<T>, past?: readonly KV<T>[]): { logits: T; cache: KV<T>[] } {
  let x = towerEmbed(ops, p, inp.ids, inp.positions);
  const cache: KV<T>[] = [];
  for (let i = 0; i < c.n_layers; i++) {
    const r = towerBlock(ops, p, c, i, x, inp.mask, past?.[i]);
    x = r.x;
    cache.push(r.kv);
  }
  return { logits: towerHead(ops, p, x), cache };
}

/** A language-modelling batch: predict targets [B*S] from ids [B, S]; weights 0 mark padding. */
export interface LMBatch<T> extends TowerInput<T> {
  targets: T;
  weights: T;
}

/** Next-token cross-entropy (nats per token) of a tower on a batch. */
export function towerLoss<T>(ops: Ops<T>, p: Params<T>, c: TowerShape, b: LMBatch<T>): T {
  const { logits } = towerForward(ops, p, c, b);
  const [B, S, V] = ops.shape(logits) as [number, number, number];
  return ops.crossEntropy(ops.reshape(logits, [B * S, V]), b.targets, b.weights);
}

/** A tower as the engines see it (every parameter trainable: pretraining). */
export function towerModel(c: TowerShape): ModelDef {
  const specs = towerSpecs(c);
  return {
    kind: 'tower',
    specs,
    trainable: () => true,
    loss: (ops, p, b) => towerLoss(ops, p, c, b as unknown as LMBatch<never>),
  };
}
