import * as tf from '@tensorflow/tfjs';
import type { TowerShape } from '../src/config/schema.js';
import { initBackend, type BackendName } from '../src/engine/backends.js';
import { initialState } from '../src/engine/engine.js';
import { TfjsEngine } from '../src/engine/tfjs-engine.js';
import { lmBatch } from '../src/data/lm.js';
import { initParams } from '../src/model/params.js';
import { towerModel, towerSpecs } from '../src/model/tower.js';

/** A tiny random tower for tests: small enough to run many steps on the cpu backend. */
export const TINY: TowerShape = { vocab_size: 37, d_model: 16, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 24 };

export async function useCpu(): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  await tf.ready();
}

export function tinyTensors(seed = 7, shape: TowerShape = TINY): Record<string, tf.Tensor> {
  const host = initParams(towerSpecs(shape), seed);
  return Object.fromEntries(towerSpecs(shape).map((s) => [s.name, tf.tensor(host.get(s.name)!, s.shape)]));
}

/** Deterministic pseudo-random token rows. */
export function randomRows(n: number, len: number, vocab: number, seed = 1): Int32Array[] {
  let x = seed;
  return Array.from({ length: n }, () =>
    Int32Array.from({ length: len }, () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return 3 + (x % (vocab - 3));
    }),
  );
}

/** Five Adam steps of the tiny tower on a tfjs backend: the losses and the final embedding table. */
export async function fiveTowerSteps(backend: BackendName): Promise<{ losses: number[]; wte: Float32Array }> {
  await initBackend(backend, { allowSoftwareGpu: true });
  const model = towerModel(TINY);
  const eng = new TfjsEngine(model, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.01, clipNorm: 1 });
  await eng.load(initialState(model, initParams(model.specs, 5)));
  const losses: number[] = [];
  for (let s = 1; s <= 5; s++) losses.push((await eng.trainStep(lmBatch(randomRows(4, 13, TINY.vocab_size, s)), s, 3e-3)).loss);
  const wte = (await eng.state()).params.get('wte.weight')!;
  eng.dispose();
  return { losses, wte };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
