import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backends.js';
import { initialState } from '../../src/engine/engine.js';
import { TfjsEngine } from '../../src/engine/tfjs-engine.js';
import { lmBatch } from '../../src/data/lm.js';
import { initParams } from '../../src/model/params.js';
import { towerModel } from '../../src/model/tower.js';
import { TINY, randomRows } from '../helpers.js';

/** Five Adam steps of the tiny tower on a backend: losses and the final weights of one tensor. */
async function fiveSteps(backend: 'cpu' | 'wasm'): Promise<{ losses: number[]; w: Float32Array }> {
  await initBackend(backend);
  const model = towerModel(TINY);
  const eng = new TfjsEngine(model, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.01, clipNorm: 1 });
  await eng.load(initialState(model, initParams(model.specs, 5)));
  const losses: number[] = [];
  for (let s = 1; s <= 5; s++) losses.push((await eng.trainStep(lmBatch(randomRows(4, 13, TINY.vocab_size, s)), s, 3e-3)).loss);
  const w = (await eng.state()).params.get('wte.weight')!;
  eng.dispose();
  return { losses, w };
}

test('wasm backend trains the tower like the cpu backend (embedding gradient without UnsortedSegmentSum)', async () => {
  const cpu = await fiveSteps('cpu');
  const wasm = await fiveSteps('wasm');
  assert.ok(Math.abs(cpu.losses[0]! - Math.log(TINY.vocab_size)) < 0.2, `first loss ${cpu.losses[0]}`);
  cpu.losses.forEach((l, i) => assert.ok(Math.abs(l - wasm.losses[i]!) < 1e-4 * l, `step ${i + 1}: cpu ${l} wasm ${wasm.losses[i]}`));
  let maxDiff = 0;
  cpu.w.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - wasm.w[i]!))));
  assert.ok(maxDiff < 1e-5, `wte differs by ${maxDiff}`);
  await initBackend('cpu');
});
