import type { ModelDef, OptimizerConfig } from '../engine.js';
import type { Params } from '../../model/params.js';
import { adamUpdate, clipByGlobalNorm, scaleAdam } from '../../train/adam.js';
import { gradients } from './autodiff.js';
import { Graph, type Sym } from './graph.js';
import { adamGroup, type BatchSpec, type ParamLayout, type Slot } from './layout.js';
import { Recorder } from './recorder.js';

/**
 * The graphs a ModelDef compiles to for training: the whole step (forward, backward, clipping,
 * Adam) as one graph, the eval loss, and a loss-and-gradients graph the parity tests use.
 *
 * Inputs: `params` (trainable, flat), `frozen` (flat, when the model has frozen parameters), the
 * batch tensors under their own names; the train step adds `m`, `v` and the host-computed Adam
 * scalars `alpha`, `eps`, `decay` (adamScalars in src/train/adam.ts).
 */

const RESERVED = new Set(['params', 'frozen', 'm', 'v', 'alpha', 'eps', 'decay']);

interface Recorded {
  g: Graph;
  rec: Recorder;
  params: Params<Sym>;
  /** The flat trainable vector and its pieces as shaped parameters, in layout order. */
  flat: Sym | null;
  leaves: Sym[];
  loss: Sym;
}

/** Parameter and batch inputs, and the model's loss recorded over them. */
function recordLoss(model: ModelDef, layout: ParamLayout, batch: BatchSpec, track: boolean): Recorded {
  const r = recordInputs(layout, batch, track);
  const loss = model.loss(r.rec, r.params, r.inputs);
  if (loss.size !== 1) throw new Error(`${model.kind} loss has shape [${loss.shape}], expected a scalar`);
  return { ...r, loss: r.rec.e.reshape(loss, []) };
}

/** The flat parameter vectors split into named parameters, and one graph input per batch tensor. */
function recordInputs(layout: ParamLayout, batch: BatchSpec, track: boolean, inference = false): Omit<Recorded, 'loss'> & { inputs: Record<string, Sym> } {
  const g = new Graph();
  const rec = new Recorder(g, { inference });
  const params: Params<Sym> = {};
  let flat: Sym | null = null;
  const unpack = (input: string, slots: Slot[], size: number) => {
    if (!slots.length) return [];
    const x = g.input(input, [size], 'float32');
    if (input === 'params') flat = x;
    return rec.e.split(x, 0, slots.map((s) => s.size)).map((piece, i) => {
      const s = slots[i]!;
      const t = rec.e.reshape(piece, s.shape);
      params[s.name] = t;
      return t;
    });
  };
  const leaves = unpack('params', layout.trainable, layout.trainSize);
  unpack('frozen', layout.frozen, layout.frozenSize);
  if (track) leaves.forEach((s) => rec.track(s));
  const inputs: Record<string, Sym> = {};
  for (const [k, t] of Object.entries(batch)) {
    if (RESERVED.has(k)) throw new Error(`batch tensor name "${k}" clashes with a graph input of the ONNX engine`);
    inputs[k] = g.input(k, t.shape, t.dtype);
  }
  return { g, rec, params, flat, leaves, inputs };
}

/** One of the model's inference functions; every output it returns is a graph output. */
export function buildFunctionGraph(model: ModelDef, layout: ParamLayout, fn: string, batch: BatchSpec): Graph {
  const f = model.functions?.[fn];
  if (!f) throw new Error(`${model.kind} has no function "${fn}"`);
  // An inference recording: onnxruntime's fused kernels, nothing differentiated.
  const r = recordInputs(layout, batch, false, true);
  for (const [name, s] of Object.entries(f(r.rec, r.params, r.inputs))) r.g.output(s, name);
  return r.g;
}

/** Gradients in layout order; zeros for parameters the loss does not reach. */
function paramGrads(r: Recorded, layout: ParamLayout): Sym[] {
  return gradients(r.rec, r.loss, r.leaves).map((d, i) => d ?? r.rec.e.zeros(layout.trainable[i]!.shape));
}

export function buildEvalGraph(model: ModelDef, layout: ParamLayout, batch: BatchSpec): Graph {
  const r = recordLoss(model, layout, batch, false);
  r.g.output(r.loss, 'loss');
  return r.g;
}

/** Loss and one `grad:<name>` output per trainable parameter: for parity tests and debugging. */
export function buildGradGraph(model: ModelDef, layout: ParamLayout, batch: BatchSpec): Graph {
  const r = recordLoss(model, layout, batch, true);
  const grads = paramGrads(r, layout);
  r.g.output(r.loss, 'loss');
  layout.trainable.forEach((s, i) => r.g.output(grads[i]!, `grad:${s.name}`));
  return r.g;
}

/**
 * One optimizer step: outputs `loss` (before the update), `grad_norm` (before clipping) and the
 * updated `params_out`, `m_out`, `v_out`. Clipping and Adam are the shared definitions in
 * src/train/adam.ts, recorded here exactly as the tfjs engine runs them eagerly.
 */
export function buildTrainGraph(model: ModelDef, layout: ParamLayout, opt: OptimizerConfig, batch: BatchSpec): Graph {
  if (!layout.trainable.length) throw new Error(`${model.kind}: no trainable parameters`);
  const r = recordLoss(model, layout, batch, true);
  const { g, rec } = r;
  const grads = paramGrads(r, layout);
  const m = g.input('m', [layout.trainSize], 'float32');
  const v = g.input('v', [layout.trainSize], 'float32');
  const s = { alpha: g.input('alpha', [], 'float32'), eps: g.input('eps', [], 'float32'), decay: g.input('decay', [], 'float32') };
  rec.withoutTape(() => {
    // Norm summed in spec order, as the tfjs engine sums it.
    const order = model.specs.flatMap((sp) => {
      const i = layout.trainable.findIndex((t) => t.name === sp.name);
      return i >= 0 ? [grads[i]!] : [];
    });
    const clip = clipByGlobalNorm(rec, order, opt.clipNorm);
    // Elementwise Adam chains over flat segments (layout.ts): decayed matrices, then the rest, each
    // split further by learning-rate multiplier.
    // (One chain over the whole vector when there is no weight decay saves the Splits and Concats
    // but measured no faster, and onnxruntime's peak memory grew by about 60 MB at d=256.)
    const groups: { decayed: boolean; scale: number; slots: { t: Slot; i: number }[] }[] = [];
    layout.trainable.forEach((t, i) => {
      const g = adamGroup(model, t);
      const last = groups.at(-1);
      if (last && last.decayed === g.decayed && last.scale === g.scale) last.slots.push({ t, i });
      else groups.push({ ...g, slots: [{ t, i }] });
    });
    const sizes = groups.map((grp) => grp.slots.reduce((n, { t }) => n + t.size, 0));
    const [ps, ms, vs] = [r.flat!, m, v].map((x) => rec.e.split(x, 0, sizes));
    const outs = groups.map((grp, k) => {
      let gFlat = rec.concat(grp.slots.map(({ t, i }) => rec.reshape(grads[i]!, [t.size])), 0);
      if (clip.scale) gFlat = rec.mul(gFlat, clip.scale);
      return adamUpdate(rec, opt.betas, scaleAdam(rec, s, grp.scale), ps[k]!, gFlat, ms[k]!, vs[k]!, grp.decayed);
    });
    g.output(r.loss, 'loss');
    g.output(clip.norm, 'grad_norm');
    g.output(rec.concat(outs.map((o) => o.p), 0), 'params_out');
    g.output(rec.concat(outs.map((o) => o.m), 0), 'm_out');
    g.output(rec.concat(outs.map((o) => o.v), 0), 'v_out');
  });
  return g;
}
