import type { TowerShape } from '../../config/schema.js';
import type { KV } from '../../model/attention.js';
import type { Params } from '../../model/params.js';
import { towerForward, towerSpecs } from '../../model/tower.js';
import { Graph, type Sym } from './graph.js';
import { placeSlots, type Slot } from './layout.js';
import { Recorder } from './recorder.js';

/**
 * Inference graphs of a tower, recorded from the same towerForward the training loss uses:
 * full-sequence logits, and the two graphs of KV-cache decoding.
 *
 * The KV cache has a fixed capacity C = max_len per layer, [B, H, C, d_head], newest entry last
 * (right-aligned); unused slots on the left are masked. A step concatenates its key onto the
 * cache (towerForward's own concat: C + 1 keys) and hands on the last C, so one static-shape step
 * graph serves every position: no dynamic shapes, and attention over masked slots adds exact zeros
 * (a key's place in the cache does not matter, positions are in the embeddings). The cost is
 * attention over C + 1 keys at every step, small beside the projections at these sizes.
 *
 * Inputs: `params` (every parameter, spec order, flat), `ids`, `positions` [B, S] int32 and the
 * additive `mask`; the step adds `past_k<i>`, `past_v<i>`. Outputs `logits`, and `k<i>`, `v<i>`
 * (the cache after this call) for prefill and step.
 */

export function inferenceSlots(shape: TowerShape): Slot[] {
  return placeSlots(towerSpecs(shape));
}

function paramInputs(g: Graph, rec: Recorder, shape: TowerShape): Params<Sym> {
  const slots = inferenceSlots(shape);
  const flat = g.input('params', [slots.reduce((n, s) => n + s.size, 0)], 'float32');
  const pieces = rec.e.split(flat, 0, slots.map((s) => s.size));
  return Object.fromEntries(slots.map((s, i) => [s.name, rec.e.reshape(pieces[i]!, s.shape)]));
}

function tokenInputs(g: Graph, B: number, S: number, maskShape: number[]) {
  return { ids: g.input('ids', [B, S], 'int32'), positions: g.input('positions', [B, S], 'int32'), mask: g.input('mask', maskShape, 'float32') };
}

/** Logits [B, S, V] of a full sequence; `mask` broadcastable to [B, H, S, S]. */
export function buildLogitsGraph(shape: TowerShape, B: number, S: number, maskShape: number[] = [S, S]): Graph {
  const g = new Graph();
  const rec = new Recorder(g);
  const { logits } = towerForward(rec, paramInputs(g, rec, shape), shape, tokenInputs(g, B, S, maskShape));
  g.output(logits, 'logits');
  return g;
}

/** Prompt prefill: mask [B, 1, S, S]; last position's logits [B, V] and the cache, left-padded to C. */
export function buildPrefillGraph(shape: TowerShape, B: number, S: number): Graph {
  const C = shape.max_len;
  if (S > C) throw new Error(`prompt of ${S} tokens is longer than the tower's max_len ${C}`);
  const g = new Graph();
  const rec = new Recorder(g);
  const r = towerForward(rec, paramInputs(g, rec, shape), shape, tokenInputs(g, B, S, [B, 1, S, S]));
  g.output(rec.e.reshape(rec.e.slice(r.logits, 1, S - 1, 1), [B, shape.vocab_size]), 'logits');
  r.cache.forEach((kv, i) => {
    g.output(rec.e.pad(kv.k, 2, C - S, 0), `k${i}`);
    g.output(rec.e.pad(kv.v, 2, C - S, 0), `v${i}`);
  });
  return g;
}

/** One decoding step: ids/positions [B, 1], mask [B, 1, 1, C + 1] over (cache slots, new token). */
export function buildStepGraph(shape: TowerShape, B: number): Graph {
  const C = shape.max_len;
  const dh = shape.d_model / shape.n_heads;
  const g = new Graph();
  const rec = new Recorder(g);
  const params = paramInputs(g, rec, shape);
  const inp = tokenInputs(g, B, 1, [B, 1, 1, C + 1]);
  const past: KV<Sym>[] = Array.from({ length: shape.n_layers }, (_, i) => ({
    k: g.input(`past_k${i}`, [B, shape.n_heads, C, dh], 'float32'),
    v: g.input(`past_v${i}`, [B, shape.n_heads, C, dh], 'float32'),
  }));
  const r = towerForward(rec, params, shape, inp, past);
  g.output(rec.e.reshape(r.logits, [B, shape.vocab_size]), 'logits');
  r.cache.forEach((kv, i) => {
    g.output(rec.e.slice(kv.k, 2, 1, C), `k${i}`);
    g.output(rec.e.slice(kv.v, 2, 1, C), `v${i}`);
  });
  return g;
}
