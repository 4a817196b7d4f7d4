import type { Modality } from '../config/schema.js';
import type { ModelDef, ModelFn } from '../engine/engine.js';
import type { Ops } from '../engine/ops.js';
import { causalMask } from './attention.js';
import { cacheOutputs, gatherRows, lastColumn, newEntries, pastOf } from './functions.js';
import type { Params } from './params.js';
import { MODALITIES, zippedLayers, zipperForward, zipperSpecs, zipperStep, type ZipperShape, type ZipTowerInput } from './zipper.js';

/**
 * The zipper as the engines see it. Batch tensors are named `<modality>_<what>`
 * (src/data/zip-batch.ts builds them):
 * - `_ids`, `_pos` [B, S] int32; `_xmask` [B, 1, S, S_other], `_xgate` [B, S, 1]; `_mask` (optional:
 *   the additive self-attention mask; causal when absent, which right-padded training batches are);
 * - for the loss, per tower with targets: `_targets` int32 [B*S], `_weights` [B*S] and `_scale` [],
 *   the tower's share of the batch's target tokens. A tower without `_targets` adds nothing.
 *
 * Inference functions (decoding, src/decode/zipper-decoder.ts):
 * - `gather`: every input but `rows` [B'] int32, its rows picked by `rows`, as `gathered_<name>`
 *   (beam search);
 * - `last`: both towers' logits at the last column, `text_last` [B, V_t], `speech_last` [B, V_s]
 *   (decoding without a cache: the whole sequence again at every step);
 * - `prefill_<m>`: `logits` [B, V_m] at the last column, tower m's self-attention keys/values
 *   `k<i>`, `v<i>` and its cross-attention keys/values `xk<n>`, `xv<n>`;
 * - `step_<m>`: tower m on one new token per row: `<m>_ids`, `<m>_pos` [B, 1], `<m>_mask`
 *   [B, 1, 1, C + 1] over (cache slots, the new token), `<m>_xmask` [B, 1, 1, S_other], `<m>_xgate`
 *   [B, 1, 1], with the cache `past_k<i>`, `past_v<i>` [B, H, C, d_head] (C slots, some unused and
 *   masked) and `xk<n>`, `xv<n>`; outputs `logits` and the new token's `new_k<i>`, `new_v<i>`.
 */

/** Which towers' own weights stay fixed: the CLI's --freeze. */
export type Freeze = 'none' | Modality | 'both';

export function frozenTowers(f: Freeze): Modality[] {
  return f === 'both' ? [...MODALITIES] : f === 'none' ? [] : [f];
}

function towerInputs<T>(ops: Ops<T>, b: Record<string, T>, m: Modality): ZipTowerInput<T> {
  const get = (k: string) => {
    const t = b[`${m}_${k}`];
    if (t === undefined) throw new Error(`zipper batch has no "${m}_${k}"`);
    return t;
  };
  const ids = get('ids');
  const S = ops.shape(ids)[1]!;
  return { ids, positions: get('pos'), mask: b[`${m}_mask`] ?? ops.constant(causalMask(S), [S, S]), xmask: get('xmask'), xgate: get('xgate') };
}

function bothInputs<T>(ops: Ops<T>, b: Record<string, T>): Record<Modality, ZipTowerInput<T>> {
  return { text: towerInputs(ops, b, 'text'), speech: towerInputs(ops, b, 'speech') };
}

export function zipperLoss<T>(ops: Ops<T>, p: Params<T>, z: ZipperShape, b: Record<string, T>): T {
  const out = zipperForward(ops, p, z, bothInputs(ops, b));
  let loss: T | null = null;
  for (const m of MODALITIES) {
    const targets = b[`${m}_targets`];
    if (targets === undefined) continue;
    const [B, S, V] = ops.shape(out.logits[m]) as [number, number, number];
    const ce = ops.crossEntropy(ops.reshape(out.logits[m], [B * S, V]), targets, b[`${m}_weights`]!);
    const term = ops.mul(ce, b[`${m}_scale`]!);
    loss = loss === null ? term : ops.add(loss, term);
  }
  if (loss === null) throw new Error('zipper batch has no targets for either tower');
  return loss;
}

function functions(z: ZipperShape): Record<string, ModelFn> {
  const fns: Record<string, ModelFn> = {
    gather: gatherRows,
    last: (ops, p, b) => {
      const out = zipperForward(ops, p, z, bothInputs(ops, b));
      return { text_last: lastColumn(ops, out.logits.text), speech_last: lastColumn(ops, out.logits.speech) };
    },
  };
  for (const m of MODALITIES) {
    fns[`prefill_${m}`] = (ops, p, b) => {
      const out = zipperForward(ops, p, z, bothInputs(ops, b));
      return { logits: lastColumn(ops, out.logits[m]), ...cacheOutputs(out.cache[m]), ...cacheOutputs(out.cross[m], 'x') };
    };
    fns[`step_${m}`] = (ops, p, b) => {
      const get = (k: string) => {
        const t = b[k];
        if (t === undefined) throw new Error(`zipper step_${m} has no input "${k}"`);
        return t;
      };
      const past = pastOf(b, z[m].n_layers, `step_${m}`);
      const cross = Array.from({ length: z.layers }, (_, n) => ({ k: get(`xk${n}`), v: get(`xv${n}`) }));
      const inp = { ids: get(`${m}_ids`), positions: get(`${m}_pos`), mask: get(`${m}_mask`), xmask: get(`${m}_xmask`), xgate: get(`${m}_xgate`) };
      const s = zipperStep(ops, p, z, m, inp, past, cross);
      return { logits: lastColumn(ops, s.logits), ...newEntries(ops, s.cache, ops.shape(past[0]!.k)[2]!) };
    };
  }
  return fns;
}

/**
 * The zipper with `frozen` towers' own weights fixed; new (zip.*) layers always train, at
 * `newLayerLr` times the schedule's learning rate (SCALE.md: fresh layers beside pretrained ones).
 */
export function zipperModel(z: ZipperShape, frozen: readonly Modality[], newLayerLr = 1): ModelDef {
  const fixed = new Set<string>(frozen);
  zippedLayers(z);
  return {
    kind: 'zipper',
    variant: { layout: { ...z, text: undefined, speech: undefined }, frozen: [...fixed].sort() },
    specs: zipperSpecs(z),
    trainable: (name) => !fixed.has(name.slice(0, name.indexOf('.'))),
    lrScale: (name) => (name.startsWith('zip.') ? newLayerLr : 1),
    loss: (ops, p, b) => zipperLoss(ops, p, z, b),
    functions: functions(z),
  };
}
