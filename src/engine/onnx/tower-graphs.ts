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
 * Two cache layouts, both static-shape:
 * - 'window' (the export's format): a fixed capacity C per layer, [B, H, C, d_head], newest entry
 *   last (right-aligned); unused slots on the left are masked. A step concatenates its key onto the
 *   cache (towerForward's own concat: C + 1 keys) and hands on the last C, so one graph serves every
 *   position, at the price of copying the whole cache in and out at every step.
 * - 'append' (the engine's decoder): the cache is left-aligned (slot j holds column j), the step
 *   attends over a capacity C of slots (the caller picks C from a few buckets as the sequence
 *   grows) and outputs only the new token's keys/values [B, H, 1, d_head], which the worker writes
 *   into its cache buffer in place. Prefill outputs the prompt's [B, H, S, d_head].
 * Either way attention over masked slots adds exact zeros (a key's place in the cache does not
 * matter: positions are in the embeddings).
 *
 * Inputs: the weights (see InferenceGraphOptions.weights), `ids`, `positions` [B, S] int32 and the
 * additive `mask`; the step adds `past_k<i>`, `past_v<i>`. Outputs `logits`, and `k<i>`, `v<i>`
 * for prefill and step.
 */

export interface InferenceGraphOptions {
  /**
   * Record onnxruntime's fused inference kernels (com.microsoft Gelu) instead of standard opset 17
   * chains (the export wants the standard domain only). Default true.
   */
  fused?: boolean;
  /**
   * How the weights enter: 'flat' (default), one `params` input in spec order split in the graph
   * (what the export folds into initializers); 'inputs', one input per weight named as the
   * parameter (no Split: the worker feeds its slots); or the values themselves, baked in as
   * initializers (onnxruntime then pre-packs the matrices once per session).
   */
  weights?: 'flat' | 'inputs' | ReadonlyMap<string, Float32Array>;
}

export interface DecodeGraphOptions extends InferenceGraphOptions {
  /** The cache layout (see above); 'window' by default. */
  cache?: 'window' | 'append';
}

export interface StepGraphOptions extends DecodeGraphOptions {
  /** Cache slots per layer the step reads (default and at most max_len). */
  capacity?: number;
}

export function inferenceSlots(shape: TowerShape): Slot[] {
  return placeSlots(towerSpecs(shape));
}

function recorder(g: Graph, opts: InferenceGraphOptions): Recorder {
  return new Recorder(g, { inference: opts.fused ?? true });
}

function paramInputs(g: Graph, rec: Recorder, shape: TowerShape, opts: InferenceGraphOptions): Params<Sym> {
  const slots = inferenceSlots(shape);
  const w = opts.weights ?? 'flat';
  if (w === 'inputs') return Object.fromEntries(slots.map((s) => [s.name, g.input(s.name, s.shape, 'float32')]));
  if (w !== 'flat')
    return Object.fromEntries(
      slots.map((s) => {
        const v = w.get(s.name);
        if (!v || v.length !== s.size) throw new Error(`weights for the inference graph: "${s.name}" ${v ? `has ${v.length} values, expected ${s.size}` : 'is missing'}`);
        return [s.name, g.init(v, s.shape, s.name)];
      }),
    );
  const flat = g.input('params', [slots.reduce((n, s) => n + s.size, 0)], 'float32');
  const pieces = rec.e.split(flat, 0, slots.map((s) => s.size));
  return Object.fromEntries(slots.map((s, i) => [s.name, rec.e.reshape(pieces[i]!, s.shape)]));
}

function tokenInputs(g: Graph, B: number, S: number, maskShape: number[]) {
  return { ids: g.input('ids', [B, S], 'int32'), positions: g.input('positions', [B, S], 'int32'), mask: g.input('mask', maskShape, 'float32') };
}

/** Logits [B, S, V] of a full sequence; `mask` broadcastable to [B, H, S, S]. */
export function buildLogitsGraph(shape: TowerShape, B: number, S: number, maskShape: number[] = [S, S], opts: InferenceGraphOptions = {}): Graph {
  const g = new Graph();
  const rec = recorder(g, opts);
  const { logits } = towerForward(rec, paramInputs(g, rec, shape, opts), shape, tokenInputs(g, B, S, maskShape));
  g.output(logits, 'logits');
  return g;
}

/**
 * Prompt prefill: mask [B, 1, S, S]; last position's logits [B, V] and the cache: left-padded to C
 * ('window') or the prompt's own S entries ('append').
 */
export function buildPrefillGraph(shape: TowerShape, B: number, S: number, opts: DecodeGraphOptions = {}): Graph {
  const C = shape.max_len;
  if (S > C) throw new Error(`prompt of ${S} tokens is longer than the tower's max_len ${C}`);
  const g = new Graph();
  const rec = recorder(g, opts);
  const r = towerForward(rec, paramInputs(g, rec, shape, opts), shape, tokenInputs(g, B, S, [B, 1, S, S]));
  g.output(rec.e.reshape(rec.e.slice(r.logits, 1, S - 1, 1), [B, shape.vocab_size]), 'logits');
  const before = (opts.cache ?? 'window') === 'window' ? C - S : 0;
  r.cache.forEach((kv, i) => {
    g.output(rec.e.pad(kv.k, 2, before, 0), `k${i}`);
    g.output(rec.e.pad(kv.v, 2, before, 0), `v${i}`);
  });
  return g;
}

/**
 * One decoding step: ids/positions [B, 1], mask [B, 1, 1, capacity + 1] over (cache slots, new
 * token); outputs the next window of the cache ('window') or the new entries ('append').
 */
export function buildStepGraph(shape: TowerShape, B: number, opts: StepGraphOptions = {}): Graph {
  const C = opts.capacity ?? shape.max_len;
  const append = (opts.cache ?? 'window') === 'append';
  if (!(Number.isInteger(C) && C >= 1 && C <= shape.max_len)) throw new Error(`step graph capacity ${C} is not in 1..max_len ${shape.max_len}`);
  if (!append && C !== shape.max_len) throw new Error('a window cache holds max_len slots');
  const dh = shape.d_model / shape.n_heads;
  const g = new Graph();
  const rec = recorder(g, opts);
  const params = paramInputs(g, rec, shape, opts);
  const inp = tokenInputs(g, B, 1, [B, 1, 1, C + 1]);
  const past: KV<Sym>[] = Array.from({ length: shape.n_layers }, (_, i) => ({
    k: g.input(`past_k${i}`, [B, shape.n_heads, C, dh], 'float32'),
    v: g.input(`past_v${i}`, [B, shape.n_heads, C, dh], 'float32'),
  }));
  const r = towerForward(rec, params, shape, inp, past);
  g.output(rec.e.reshape(r.logits, [B, shape.vocab_size]), 'logits');
  r.cache.forEach((kv, i) => {
    g.output(rec.e.slice(kv.k, 2, append ? C : 1, append ? 1 : C), `k${i}`);
    g.output(rec.e.slice(kv.v, 2, append ? C : 1, append ? 1 : C), `v${i}`);
  });
  return g;
}
