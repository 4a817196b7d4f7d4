import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, type ModelDef, type TrainEngine } from '../../../src/engine/engine.js';
import { OrtEngine } from '../../../src/engine/onnx/ort-engine.js';
import { TfjsEngine } from '../../../src/engine/tfjs-engine.js';
import { initParams } from '../../../src/model/params.js';
import { frozenTowers, zipperModel, type Freeze } from '../../../src/model/zipper-model.js';
import { TINY, useCpu } from '../../helpers.js';
import { TINY_SPEECH, tinyZipBatch, tinyZipper } from '../../model/zipper-fixture.js';
import { assertOrtGradientsMatch, copyParams, maxAbs, zeroGradient } from './parity-helpers.js';

const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1.0 };

test('ort engine: zipper loss and every gradient equal tfjs\'s (ASR and TTS rows, padding, different tower widths)', async () => {
  await useCpu();
  // The options that add, drop or re-initialise cross-attention parameters are checked once as well.
  for (const over of [{ context_norm: true, cross_init: 'xavier' as const }, { context_norm: true, context_projection_layers: 0, speech: { ...TINY_SPEECH, d_model: TINY.d_model } }]) {
    const normed = zipperModel(tinyZipper(over), []);
    assert.ok(normed.specs.some((s) => s.name === 'zip.text.x.1.ctx_ln.weight'));
    await assertOrtGradientsMatch(normed, initParams(normed.specs, 12), tinyZipBatch(4), 1e-4);
  }
  const model = zipperModel(tinyZipper(), []);
  const p0 = initParams(model.specs, 11);
  const batch = tinyZipBatch(4);
  const { got, ref, worst } = await assertOrtGradientsMatch(model, p0, batch, 1e-4);
  // The gates and the cross-attention get gradient (the gates start open in this fixture).
  for (const n of ['zip.text.x.0.attn_gate', 'zip.speech.x.1.ff_gate', 'zip.text.x.1.attn.q_proj.weight']) assert.ok(maxAbs([ref.grads.get(n)!]) > 0, `${n} has no gradient`);
  console.log(`# zipper: loss ${got.loss} vs ${ref.loss}; worst gradient relative difference ${worst.toExponential(2)}`);
});

async function trainFew(eng: TrainEngine, model: ModelDef, p0: Map<string, Float32Array>): Promise<Map<string, Float32Array>> {
  await eng.load(initialState(model, copyParams(p0)));
  for (let s = 1; s <= 4; s++) await eng.trainStep(tinyZipBatch(4, s), s, 1e-2);
  const st = await eng.state();
  eng.dispose();
  return st.params;
}

for (const freeze of ['text', 'speech', 'both', 'none'] as Freeze[]) {
  test(`--freeze ${freeze}: a frozen tower's weights stay byte for byte on both engines; new layers train`, async () => {
    await useCpu();
    const model = zipperModel(tinyZipper(), frozenTowers(freeze));
    const p0 = initParams(model.specs, 3);
    for (const [label, eng] of [['tfjs', new TfjsEngine(model, OPT)], ['ort', new OrtEngine(model, OPT, { providers: ['cpu'] })]] as const) {
      const after = await trainFew(eng, model, p0);
      for (const s of model.specs) {
        const tower = s.name.slice(0, s.name.indexOf('.'));
        const same = Buffer.from(after.get(s.name)!.buffer).equals(Buffer.from(p0.get(s.name)!.buffer));
        if (frozenTowers(freeze).includes(tower as never)) assert.ok(same, `${label}: frozen ${s.name} changed`);
        else if (!zeroGradient(s.name)) assert.ok(!same, `${label}: trainable ${s.name} did not change`);
      }
    }
  });
}

test('new-layer learning-rate multiplier: zip.* parameters move k times as far on the first step, towers as before, on both engines', async () => {
  await useCpu();
  const p0 = initParams(zipperModel(tinyZipper(), []).specs, 9);
  const oneStep = async (eng: TrainEngine, model: ModelDef) => {
    await eng.load(initialState(model, copyParams(p0)));
    await eng.trainStep(tinyZipBatch(4, 2), 1, 1e-3);
    const s = await eng.state();
    eng.dispose();
    return s.params;
  };
  const base = zipperModel(tinyZipper(), []);
  const fast = zipperModel(tinyZipper(), [], 4);
  for (const [label, make] of [['tfjs', (m: ModelDef) => new TfjsEngine(m, OPT)], ['ort', (m: ModelDef) => new OrtEngine(m, OPT, { providers: ['cpu'] })]] as const) {
    const a = await oneStep(make(base), base);
    const b = await oneStep(make(fast), fast);
    const moved = (p: Map<string, Float32Array>, n: string) => maxAbs([p.get(n)!.map((x, i) => x - p0.get(n)![i]!)]);
    for (const n of ['zip.text.x.0.attn.q_proj.weight', 'zip.speech.in_proj.1.bias']) {
      const r = moved(b, n) / moved(a, n);
      assert.ok(Math.abs(r - 4) < 0.01, `${label} ${n}: moved ${r}x`);
    }
    assert.ok(Math.abs(moved(b, 'speech.h.0.attn.q_proj.weight') / moved(a, 'speech.h.0.attn.q_proj.weight') - 1) < 1e-3, `${label}: tower parameters move as before`);
  }
});
