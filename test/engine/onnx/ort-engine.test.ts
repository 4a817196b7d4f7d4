import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, type ModelDef } from '../../../src/engine/engine.js';
import { OrtEngine } from '../../../src/engine/onnx/ort-engine.js';
import { TfjsEngine } from '../../../src/engine/tfjs-engine.js';
import { lmBatch } from '../../../src/data/lm.js';
import { initParams } from '../../../src/model/params.js';
import { towerModel } from '../../../src/model/tower.js';
import { TINY, randomRows, useCpu } from '../../helpers.js';
import { assertOrtGradientsMatch, copyParams, frozenTiny, relDiff, zeroGradient } from './parity-helpers.js';

const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };
const CPU = { providers: ['cpu'] as const };

for (const [label, make] of [['tower', () => towerModel(TINY)], ['tower with frozen layer 0 and positions', frozenTiny]] as const) {
  test(`ort engine: loss and every gradient equal tfjs's (${label})`, async () => {
    await useCpu();
    const model: ModelDef = make();
    const p0 = initParams(model.specs, 11);
    // Ragged rows: padding (weight 0) must drop out of the loss and its gradient alike.
    const batch = lmBatch(randomRows(3, 14, TINY.vocab_size, 2));
    (batch.weights!.data as Float32Array).fill(0, 20, 26);
    const { got, ref, worst } = await assertOrtGradientsMatch(model, p0, batch, 1e-5);
    console.log(`# ${label}: loss ${got.loss} vs ${ref.loss}; worst gradient relative difference ${worst.toExponential(2)}`);
  });

  test(`ort engine: 20 Adam steps track tfjs's (${label})`, async () => {
    await useCpu();
    const model: ModelDef = make();
    const p0 = initParams(model.specs, 5);
    const rows = randomRows(8, 11, TINY.vocab_size, 9);
    const batches = [lmBatch(rows.slice(0, 4)), lmBatch(rows.slice(4))];
    const ref = new TfjsEngine(model, OPT);
    const eng = new OrtEngine(model, OPT, CPU);
    await ref.load(initialState(model, copyParams(p0)));
    await eng.load(initialState(model, copyParams(p0)));
    let worstLoss = 0;
    for (let s = 1; s <= 20; s++) {
      const b = batches[s % 2]!;
      const a = await ref.trainStep(b, s, 3e-3);
      const o = await eng.trainStep(b, s, 3e-3);
      worstLoss = Math.max(worstLoss, Math.abs(a.loss - o.loss));
      assert.ok(Math.abs(a.loss - o.loss) <= 1e-4, `step ${s}: loss ${o.loss} vs ${a.loss}`);
      assert.ok(Math.abs(a.gradNorm - o.gradNorm) <= 1e-4 * a.gradNorm, `step ${s}: grad norm ${o.gradNorm} vs ${a.gradNorm}`);
    }
    const [sr, so] = [await ref.state(), await eng.state()];
    ref.dispose();
    eng.dispose();
    let worst = { p: 0, m: 0, v: 0 };
    for (const spec of model.specs) {
      const n = spec.name;
      const p = so.params.get(n)!;
      if (!model.trainable(n)) {
        assert.deepEqual(Buffer.from(p.buffer, p.byteOffset, p.byteLength), Buffer.from(p0.get(n)!.buffer), `frozen ${n} changed`);
        assert.ok(!so.m.has(n) && !so.v.has(n), `frozen ${n} has optimizer state`);
        continue;
      }
      worst = {
        p: zeroGradient(n) ? worst.p : Math.max(worst.p, relDiff(p, sr.params.get(n)!)),
        m: Math.max(worst.m, relDiff(so.m.get(n)!, sr.m.get(n)!, 1e-6)),
        v: Math.max(worst.v, relDiff(so.v.get(n)!, sr.v.get(n)!, 1e-10)),
      };
    }
    assert.ok(worst.p < 1e-4 && worst.m < 1e-3 && worst.v < 1e-3, `after 20 steps: ${JSON.stringify(worst)}`);
    for (const k of ['params', 'm', 'v'] as const) assert.deepEqual([...so[k].keys()], [...sr[k].keys()], `${k}: same names, same order`);
    console.log(`# ${label}: 20 steps, worst loss difference ${worstLoss.toExponential(2)}; relative params ${worst.p.toExponential(2)}, m ${worst.m.toExponential(2)}, v ${worst.v.toExponential(2)}`);
  });
}

test('a run started on tfjs resumes on ort (and back) with the same losses', async () => {
  await useCpu();
  const model = towerModel(TINY);
  const batch = lmBatch(randomRows(4, 11, TINY.vocab_size, 3));
  const straight = new TfjsEngine(model, OPT);
  await straight.load(initialState(model, initParams(model.specs, 8)));
  const want: number[] = [];
  for (let s = 1; s <= 6; s++) want.push((await straight.trainStep(batch, s, 5e-3)).loss);
  straight.dispose();
  // tfjs for steps 1-2, ort for 3-4, tfjs again for 5-6, handing over TrainState each time.
  const got: number[] = [];
  let state = initialState(model, initParams(model.specs, 8));
  for (const [from, make] of [[1, () => new TfjsEngine(model, OPT)], [3, () => new OrtEngine(model, OPT, CPU)], [5, () => new TfjsEngine(model, OPT)]] as const) {
    const eng = make();
    await eng.load(state);
    for (let s = from; s < from + 2; s++) got.push((await eng.trainStep(batch, s, 5e-3)).loss);
    state = await eng.state();
    eng.dispose();
  }
  got.forEach((l, i) => assert.ok(Math.abs(l - want[i]!) <= 1e-4, `step ${i + 1}: ${l} vs ${want[i]}`));
});
