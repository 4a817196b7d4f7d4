import { Rng } from '../util/rng.js';

/**
 * How a parameter starts: N(0, std^2), all ones (LayerNorm gain), all zeros (biases) or one value
 * (the zipper's tanh gates).
 */
export type Init = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' } | { kind: 'constant'; value: number };

/** One named parameter of a model definition; names are the safetensors tensor names. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
}

/** A model's parameters by name, whatever the engine's tensor type. */
export type Params<T> = Record<string, T>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Host-side initial values for `specs`, drawn in spec order from one seeded generator, so every
 * engine starts from the same numbers for the same seed.
 */
export function initParams(specs: readonly ParamSpec[], seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const a = new Float32Array(numel(s.shape));
    if (s.init.kind === 'ones') a.fill(1);
    else if (s.init.kind === 'constant') a.fill(s.init.value);
    else if (s.init.kind === 'normal') for (let i = 0; i < a.length; i++) a[i] = rng.normal() * s.init.std;
    out.set(s.name, a);
  }
  return out;
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + numel(s.shape), 0);
}
