import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfjsEngine } from '../../src/engine/tfjs-engine.js';
import { initialState } from '../../src/engine/engine.js';
import { initParams } from '../../src/model/params.js';
import { towerModel } from '../../src/model/tower.js';
import { lmBatch } from '../../src/data/lm.js';
import { adamScalars } from '../../src/train/adam.js';
import { TINY, randomRows, useCpu } from '../helpers.js';

const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1.0 };

test('tfjs engine: a tiny tower memorises a fixed batch', async () => {
  await useCpu();
  const model = towerModel(TINY);
  const eng = new TfjsEngine(model, OPT);
  await eng.load(initialState(model, initParams(model.specs, 3)));
  const batch = lmBatch(randomRows(4, 13, TINY.vocab_size, 5));
  const first = await eng.evalLoss(batch);
  let last = first;
  for (let s = 1; s <= 60; s++) last = (await eng.trainStep(batch, s, 1e-2)).loss;
  assert.ok(last < first * 0.5, `loss ${first} -> ${last}`);
  eng.dispose();
});

test('one Adam step equals the textbook update', async () => {
  await useCpu();
  const model = towerModel(TINY);
  const eng = new TfjsEngine(model, { ...OPT, clipNorm: 0 });
  const p0 = initParams(model.specs, 4);
  await eng.load(initialState(model, new Map([...p0].map(([k, v]) => [k, v.slice()]))));
  const batch = lmBatch(randomRows(2, 9, TINY.vocab_size, 8));
  await eng.trainStep(batch, 1, 1e-3);
  const s = await eng.state();
  // After one step m = (1-b1) g and v = (1-b2) g^2, so the textbook step is lr * ghat/(|ghat|+eps) with
  // ghat = g: recover g from m and check p1 = p0 - lr * mhat / (sqrt(vhat) + eps).
  const name = 'h.0.attn.q_proj.weight';
  const m = s.m.get(name)!;
  const v = s.v.get(name)!;
  const p1 = s.params.get(name)!;
  const sc = adamScalars({ lr: 1e-3, betas: OPT.betas, eps: 1e-8, weightDecay: 0 }, 1);
  for (let i = 0; i < 50; i++) {
    const g = m[i]! / 0.1;
    assert.ok(Math.abs(v[i]! - 0.01 * g * g) <= 1e-6 * Math.max(1e-12, v[i]!) + 1e-12, `v[${i}]`);
    const textbook = p0.get(name)![i]! - (1e-3 * (m[i]! / 0.1)) / (Math.sqrt(v[i]! / 0.01) + 1e-8);
    assert.ok(Math.abs(p1[i]! - textbook) < 1e-7, `p[${i}] ${p1[i]} vs ${textbook}`);
  }
  assert.ok(sc.alpha > 0);
  eng.dispose();
});
