import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { tfjsOps } from '../../src/engine/tfjs-ops.js';
import { causalMask } from '../../src/model/attention.js';
import { towerForward, towerLoss, towerSpecs } from '../../src/model/tower.js';
import { countParams } from '../../src/model/params.js';
import { lmBatch } from '../../src/data/lm.js';
import { TfjsTowerDecoder } from '../../src/engine/tfjs-decoder.js';
import { generate } from '../../src/decode/sample.js';
import { TINY, randomRows, tinyTensors, useCpu } from '../helpers.js';

test('fresh tower loss is near ln(vocab)', async () => {
  await useCpu();
  const p = tinyTensors();
  const b = lmBatch(randomRows(3, 11, TINY.vocab_size));
  const inputs = Object.fromEntries(Object.entries(b).map(([k, t]) => [k, tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32')]));
  const loss = (await towerLoss(tfjsOps, p, TINY, inputs as never).data())[0]!;
  assert.ok(Math.abs(loss - Math.log(TINY.vocab_size)) < 0.1, `loss ${loss} vs ln V ${Math.log(TINY.vocab_size)}`);
});

test('parameter count matches the GPT-2 formula', () => {
  const d = TINY.d_model;
  const perLayer = 2 * 2 * d + 4 * (d * d + d) + (d * 2 * d + 2 * d) + (2 * d * d + d);
  assert.equal(countParams(towerSpecs(TINY)), TINY.vocab_size * d + TINY.max_len * d + TINY.n_layers * perLayer + 2 * d);
});

test('causal: changing a later token never changes earlier logits', async () => {
  await useCpu();
  const p = tinyTensors();
  const S = 10;
  const run = (row: Int32Array) =>
    towerForward(tfjsOps, p, TINY, {
      ids: tf.tensor2d(row, [1, S], 'int32'),
      positions: tf.tensor2d(Int32Array.from({ length: S }, (_, i) => i), [1, S], 'int32'),
      mask: tf.tensor2d(causalMask(S), [S, S]),
    }).logits.arraySync() as number[][][];
  const a = randomRows(1, S, TINY.vocab_size, 3)[0]!;
  const b = a.slice();
  b[7] = (b[7]! + 1) % TINY.vocab_size;
  const la = run(a)[0]!;
  const lb = run(b)[0]!;
  for (let i = 0; i < 7; i++) assert.deepEqual(la[i], lb[i], `position ${i} changed`);
  assert.notDeepEqual(la[7], lb[7]);
});

test('greedy decoding with the KV cache equals decoding by full recomputation, with ragged prompts', async () => {
  await useCpu();
  const p = tinyTensors(11);
  const prompts = [[1, 5, 9], [1], [1, 4, 4, 7, 20]];
  const opts = { maxNewTokens: 12, temperature: 0, topK: 0, stopToken: -1, seed: 0 };
  const cached = await generate(new TfjsTowerDecoder(p, TINY), prompts, opts);
  // Reference: each row alone, the whole sequence recomputed from scratch for every new token.
  for (let r = 0; r < prompts.length; r++) {
    const seq = [...prompts[r]!];
    for (let t = 0; t < opts.maxNewTokens; t++) {
      const dec = new TfjsTowerDecoder(p, TINY);
      const [logits] = await dec.prefill([seq]);
      dec.dispose();
      seq.push(logits!.indexOf(Math.max(...logits!)));
    }
    assert.deepEqual(cached[r], seq.slice(prompts[r]!.length), `row ${r}`);
  }
});
