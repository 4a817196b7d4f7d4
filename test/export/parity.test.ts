import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { generate } from '../../src/decode/sample.js';
import type { StepDecoder } from '../../src/engine/engine.js';
import { OrtTowerDecoder } from '../../src/engine/onnx/ort-decoder.js';
import { TfjsTowerDecoder } from '../../src/engine/tfjs-decoder.js';
import { buildTowerExport } from '../../src/export/onnx.js';
import { ExportedTowerDecoder } from '../../src/export/runtime.js';
import type { TowerSource } from '../../src/export/source.js';
import { verifyExport } from '../../src/export/verify.js';
import { initParams } from '../../src/model/params.js';
import { towerSpecs } from '../../src/model/tower.js';
import { TINY, maxAbsDiff, useCpu } from '../helpers.js';

/**
 * An exported file against the engine, on random weights scaled up (at init scale an untrained
 * tower just repeats its last token, which would make equal greedy decodes a weak check).
 */
function source(seed: number, scale = 25): TowerSource {
  const params = initParams(towerSpecs(TINY), seed);
  for (const s of towerSpecs(TINY)) if (s.init.kind === 'normal') params.get(s.name)!.forEach((x, i, a) => (a[i] = x * scale));
  const info = { format: 'zipper-checkpoint/1' as const, kind: 'tower', modality: 'text', step: 3, engine: 'ort', data: { epoch: 0, offset: 0, windows: 0, hash: '' }, metrics: {} };
  return { dir: 'memory', info, shape: TINY, params, tokenizer: '{}', specials: { pad: 0, bos: 1, eos: 2 } };
}

const tensors = (src: TowerSource) => Object.fromEntries(towerSpecs(TINY).map((s) => [s.name, tf.tensor(src.params.get(s.name)!, s.shape)]));
const greedy = { maxNewTokens: 30, temperature: 0, topK: 0, stopToken: -1, seed: 1 };

/** Largest |logit difference| over a prompt and `steps` teacher-forced steps. */
async function worstDiff(a: StepDecoder, b: StepDecoder, prompts: number[][], steps: number): Promise<number> {
  let [x, y] = [await a.prefill(prompts), await b.prefill(prompts)];
  let worst = 0;
  for (let t = 0; ; t++) {
    x.forEach((row, r) => (worst = Math.max(worst, maxAbsDiff(row, y[r]!))));
    if (t === steps) return worst;
    const next = prompts.map((_, r) => (t * 7 + r * 3) % TINY.vocab_size);
    [x, y] = [await a.step(next), await b.step(next)];
  }
}

for (const prompts of [[[1, 5, 9, 4, 7]], [[1, 5, 9, 4, 7], [1, 30], [1, 12, 3]]]) {
  const B = prompts.length;
  test(`exported step graph (batch ${B}) gives the engine's logits and greedy decodes`, async () => {
    await useCpu();
    const src = source(9);
    const { bytes } = buildTowerExport(src, B);
    const file = await ExportedTowerDecoder.create(bytes, TINY, B);
    const ort = new OrtTowerDecoder(src.params, TINY, { providers: ['cpu'] });
    const t = tensors(src);
    const tfjs = new TfjsTowerDecoder(t, TINY);
    try {
      const dOrt = await worstDiff(ort, file, prompts, 10);
      const dTfjs = await worstDiff(tfjs, file, prompts, 10);
      assert.ok(dOrt < 1e-4 && dTfjs < 1e-4, `max |logit diff| vs ort ${dOrt}, vs tfjs ${dTfjs}`);
      const want = await generate(ort, prompts, greedy);
      const got = await generate(file, prompts, greedy);
      assert.deepEqual(got, want);
      assert.deepEqual(await generate(tfjs, prompts, greedy), want);
      assert.ok(new Set(got.flat()).size > 5, `decodes too uniform to test anything: ${JSON.stringify(got)}`);
      // Up to max_len: the fixed-capacity cache holds every position, then the decoder stops.
      if (B === 1) {
        const long = await generate(file, [[1, 2]], { ...greedy, maxNewTokens: 100 });
        assert.equal(long[0]!.length, TINY.max_len - 2);
        assert.deepEqual(long, await generate(ort, [[1, 2]], { ...greedy, maxNewTokens: 100 }));
        // generate() feeds its last token nowhere: one more step fills the cache's last slot.
        await file.step([3]);
        await assert.rejects(() => file.step([3]), /reached the tower's max_len 24/);
      }
      console.log(`# batch ${B}: max |logit diff| vs ort ${dOrt.toExponential(2)}, vs tfjs ${dTfjs.toExponential(2)}; greedy ${JSON.stringify(got)}`);
    } finally {
      file.dispose();
      ort.dispose();
      tfjs.dispose();
      Object.values(t).forEach((x) => x.dispose());
    }
  });
}

test('the exported decoder refuses a wrong batch and step before prefill', async () => {
  const { bytes } = buildTowerExport(source(1), 2);
  const file = await ExportedTowerDecoder.create(bytes, TINY, 2);
  await assert.rejects(() => file.step([1, 1]), /before prefill/);
  await assert.rejects(() => file.prefill([[1]]), /decodes 2 row\(s\) at a time .* got 1 prompts/);
  file.dispose();
});

test('verification catches a file whose weights are not the checkpoint’s', async () => {
  const good = await verifyExport(buildTowerExport(source(4), 2).bytes, source(4), 2);
  assert.ok(good.maxAbsDiff < 1e-4 && good.steps === 8, JSON.stringify(good));
  await assert.rejects(() => verifyExport(buildTowerExport(source(5), 1).bytes, source(4), 1), /export verification failed: .* differ from the engine's by .*nothing was written/);
});
