import type { HostBatch, ModelDef } from '../engine.js';
import { numel, type ParamSpec } from '../../model/params.js';
import type { DType } from './graph.js';

/**
 * How a model's parameters sit in the flat float vectors the graphs take and return: trainable
 * parameters (and their Adam moments) in one vector, weight-decayed ones (rank >= 2, as the tfjs
 * engine decides) first so the optimizer runs as two long elementwise chains; frozen parameters in
 * another vector that no graph writes.
 */
export interface Slot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface ParamLayout {
  trainable: Slot[];
  frozen: Slot[];
  trainSize: number;
  frozenSize: number;
}

/** Consecutive slots for `specs` in the order given. */
export function placeSlots(specs: readonly ParamSpec[]): Slot[] {
  let off = 0;
  return specs.map((s) => {
    const slot = { name: s.name, shape: [...s.shape], offset: off, size: numel(s.shape) };
    off += slot.size;
    return slot;
  });
}

/** A trainable parameter's optimizer group: decayed or not, and its learning-rate multiplier. */
export function adamGroup(model: ModelDef, s: { name: string; shape: readonly number[] }): { decayed: boolean; scale: number } {
  return { decayed: s.shape.length >= 2, scale: model.lrScale?.(s.name) ?? 1 };
}

export function paramLayout(model: ModelDef): ParamLayout {
  const tr = model.specs.filter((s) => model.trainable(s.name));
  // Grouped for the optimizer (train-graph.ts): decayed matrices first, then by multiplier.
  const rank = (s: ParamSpec) => {
    const g = adamGroup(model, s);
    return [g.decayed ? 0 : 1, g.scale] as const;
  };
  const trainable = placeSlots([...tr].sort((a, b) => rank(a)[0] - rank(b)[0] || rank(a)[1] - rank(b)[1]));
  const frozen = placeSlots(model.specs.filter((s) => !model.trainable(s.name)));
  const total = (xs: Slot[]) => xs.reduce((n, s) => n + s.size, 0);
  return {
    trainable,
    frozen,
    trainSize: total(trainable),
    frozenSize: total(frozen),
  };
}

/** Gathers named arrays into one flat vector laid out by `slots`. */
export function flatten(slots: readonly Slot[], values: ReadonlyMap<string, Float32Array>, what: string): Float32Array {
  const out = new Float32Array(slots.reduce((n, s) => n + s.size, 0));
  for (const s of slots) {
    const v = values.get(s.name);
    if (!v) throw new Error(`${what} has no tensor "${s.name}"`);
    if (v.length !== s.size) throw new Error(`${what}: "${s.name}" has ${v.length} values, expected ${s.size} for shape [${s.shape}]`);
    out.set(v, s.offset);
  }
  return out;
}

/** Named copies out of a flat vector. */
export function unflatten(slots: readonly Slot[], flat: Float32Array): Map<string, Float32Array> {
  return new Map(slots.map((s) => [s.name, flat.slice(s.offset, s.offset + s.size)]));
}

/** What a graph needs to know of a batch: each tensor's shape and dtype. */
export type BatchSpec = Record<string, { shape: number[]; dtype: DType }>;

export function batchSpec(batch: HostBatch): BatchSpec {
  const out: BatchSpec = {};
  for (const k of Object.keys(batch).sort()) {
    const t = batch[k]!;
    out[k] = { shape: [...t.shape], dtype: t.data instanceof Int32Array ? 'int32' : 'float32' };
  }
  return out;
}
