import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initialState } from '../../../src/engine/engine.js';
import { OrtEngine } from '../../../src/engine/onnx/ort-engine.js';
import type { HostBatch, ModelDef } from '../../../src/engine/engine.js';
import { tfjsOps } from '../../../src/engine/tfjs-ops.js';
import { toTensors } from '../../../src/engine/tfjs-engine.js';
import { towerModel } from '../../../src/model/tower.js';
import { TINY } from '../../helpers.js';

/** The tiny tower with layer 0 and the position table frozen (as a fine-tuning stage would). */
export function frozenTiny(): ModelDef {
  const base = towerModel(TINY);
  return { ...base, kind: 'tower-frozen', trainable: (n) => !n.startsWith('h.0.') && n !== 'wpe.weight' };
}

/** tfjs's loss and gradients for the trainable parameters: the reference. */
export function tfjsGradients(model: ModelDef, params: Map<string, Float32Array>, batch: HostBatch): { loss: number; grads: Map<string, Float32Array> } {
  let result: { loss: number; grads: Map<string, Float32Array> } | undefined;
  tf.tidy(() => {
    const vars = new Map(model.specs.map((s) => [s.name, tf.variable(tf.tensor(params.get(s.name)!, s.shape), model.trainable(s.name))]));
    const trainable = model.specs.filter((s) => model.trainable(s.name)).map((s) => vars.get(s.name)!);
    const { value, grads } = tf.variableGrads(() => model.loss(tfjsOps, Object.fromEntries(vars), toTensors(batch)) as tf.Scalar, trainable);
    const out = new Map(model.specs.filter((s) => model.trainable(s.name)).map((s) => [s.name, grads[vars.get(s.name)!.name]!.dataSync() as Float32Array]));
    const loss = value.dataSync()[0]!;
    vars.forEach((v) => v.dispose());
    result = { loss, grads: out };
  });
  return result!;
}

/**
 * max |a - b| / max |b|: the error relative to the tensor's scale. A tensor whose reference is
 * zero up to float noise is measured against `floor` instead: the key projections' bias has a zero
 * gradient in exact arithmetic (softmax ignores a shift of every score), so both engines give
 * rounding noise there (about 1e-12).
 */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-9): number {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} vs ${b.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, floor);
}

export function copyParams(p: Map<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...p].map(([k, v]) => [k, v.slice()]));
}

/** Largest |x| over all tensors: the scale a noise floor is taken relative to. */
export function maxAbs(ts: Iterable<ArrayLike<number>>): number {
  let m = 0;
  for (const t of ts) for (let i = 0; i < t.length; i++) m = Math.max(m, Math.abs(t[i]!));
  return m;
}

/** Parameters whose exact gradient is zero: Adam turns their noise into +-lr steps, differently per engine. */
export const zeroGradient = (name: string) => /attn\.k_proj\.bias$/.test(name);

/**
 * The ONNX engine's loss and every gradient against tfjs's for one batch: the loss within 1e-5
 * relative, the same parameter names, and each gradient within `tol` relative (zero-gradient
 * parameters against the largest gradient). Returns both sides and the worst difference.
 */
export async function assertOrtGradientsMatch(model: ModelDef, p0: Map<string, Float32Array>, batch: HostBatch, tol: number) {
  const ref = tfjsGradients(model, p0, batch);
  const eng = new OrtEngine(model, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clipNorm: 1 }, { providers: ['cpu'] });
  await eng.load(initialState(model, copyParams(p0)));
  const got = await eng.gradients(batch);
  eng.dispose();
  assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * ref.loss, `loss ${got.loss} vs ${ref.loss}`);
  assert.deepEqual([...got.grads.keys()].sort(), [...ref.grads.keys()].sort());
  const scale = maxAbs(ref.grads.values());
  let worst = 0;
  for (const [name, g] of ref.grads) {
    const r = relDiff(got.grads.get(name)!, g, zeroGradient(name) ? scale : 1e-12);
    worst = Math.max(worst, r);
    assert.ok(r <= tol, `${name}: relative gradient difference ${r}`);
  }
  return { got, ref, worst };
}
