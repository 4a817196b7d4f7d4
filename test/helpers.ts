import * as tf from '@tensorflow/tfjs';
import type { TowerShape } from '../src/config/schema.js';
import { initParams } from '../src/model/params.js';
import { towerSpecs } from '../src/model/tower.js';

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
