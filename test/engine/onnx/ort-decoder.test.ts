import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { generate } from '../../../src/decode/sample.js';
import { OrtTowerDecoder } from '../../../src/engine/onnx/ort-decoder.js';
import { cacheBucket } from '../../../src/decode/padding.js';
import { OrtRunner } from '../../../src/engine/onnx/runner.js';
import { buildLogitsGraph, inferenceSlots } from '../../../src/engine/onnx/tower-graphs.js';
import { flatten } from '../../../src/engine/onnx/layout.js';
import { TfjsTowerDecoder } from '../../../src/engine/tfjs-decoder.js';
import { tfjsOps } from '../../../src/engine/tfjs-ops.js';
import { causalMask } from '../../../src/model/attention.js';
import { initParams } from '../../../src/model/params.js';
import { towerForward, towerSpecs } from '../../../src/model/tower.js';
import { TINY, randomRows, useCpu } from '../../helpers.js';
import { relDiff } from './parity-helpers.js';

const CPU = { providers: ['cpu'] as const };

/**
 * Random weights, scaled up: at the init scale (std 0.02) an untrained tower just repeats its last
 * token, which would make equal greedy decodes a weak check.
 */
function tinyWeights(seed: number, scale = 1, shape = TINY) {
  const host = initParams(towerSpecs(shape), seed);
  for (const s of towerSpecs(shape)) if (s.init.kind === 'normal') host.get(s.name)!.forEach((x, i, a) => (a[i] = x * scale));
  const tensors = Object.fromEntries(towerSpecs(shape).map((s) => [s.name, tf.tensor(host.get(s.name)!, s.shape)]));
  return { host, tensors };
}

test('ort logits graph equals tfjs forward', async () => {
  await useCpu();
  const { host, tensors } = tinyWeights(4);
  const [B, S] = [3, 10];
  const ids = Int32Array.from(randomRows(B, S, TINY.vocab_size, 3).flatMap((r) => [...r]));
  const pos = Int32Array.from({ length: B * S }, (_, i) => i % S);
  const mask = causalMask(S);
  const ref = tf.tidy(() => towerForward(tfjsOps, tensors, TINY, { ids: tf.tensor2d(ids, [B, S], 'int32'), positions: tf.tensor2d(pos, [B, S], 'int32'), mask: tf.tensor2d(mask, [S, S]) }).logits.dataSync());
  const r = await OrtRunner.start(CPU);
  try {
    const slots = inferenceSlots(TINY);
    await r.setSlot('params', { data: flatten(slots, host, 'weights'), shape: [slots.reduce((n, s) => n + s.size, 0)] });
    await r.load('logits', buildLogitsGraph(TINY, B, S).toBytes());
    const out = await r.run('logits', { feeds: { ids: { data: ids, shape: [B, S] }, positions: { data: pos, shape: [B, S] }, mask: { data: mask, shape: [S, S] } }, slotFeeds: { params: 'params' }, fetch: ['logits'] });
    assert.deepEqual(out.logits!.shape, [B, S, TINY.vocab_size]);
    const d = relDiff(out.logits!.data, ref);
    assert.ok(d < 1e-5, `logits relative difference ${d}`);
    console.log(`# logits relative difference ${d.toExponential(2)}`);
  } finally {
    r.dispose();
    Object.values(tensors).forEach((t) => t.dispose());
  }
});

test('ort KV-cache decoder: same step logits and greedy decodes as tfjs, ragged prompts', async () => {
  await useCpu();
  const { host, tensors } = tinyWeights(9, 25);
  // Ragged: left padding must be invisible to every row.
  const prompts = [[1, 5, 9, 4, 7], [1, 30], [1, 12, 3]];
  const o = { maxNewTokens: 15, temperature: 0, topK: 0, stopToken: -1, seed: 1 };
  const ref = new TfjsTowerDecoder(tensors, TINY);
  const ort = new OrtTowerDecoder(host, TINY, CPU);
  try {
    // Step by step on the same tokens: logits agree closely at every position.
    let a = await ref.prefill(prompts);
    let b = await ort.prefill(prompts);
    let worst = 0;
    for (let t = 0; t < 8; t++) {
      a.forEach((row, i) => (worst = Math.max(worst, relDiff(b[i]!, row))));
      const next = prompts.map((_, i) => (t * 7 + i * 3) % TINY.vocab_size);
      [a, b] = [await ref.step(next), await ort.step(next)];
    }
    assert.ok(worst < 1e-5, `step logits relative difference ${worst}`);
    const want = await generate(ref, prompts, o);
    const got = await generate(ort, prompts, o);
    assert.deepEqual(got, want);
    assert.ok(new Set(got.flat()).size > 5, `decodes too uniform to test anything: ${JSON.stringify(got)}`);
    // Up to max_len: the fixed-capacity cache must hold every position.
    const long = await generate(ort, [[1, 2]], { ...o, maxNewTokens: 100 });
    assert.equal(long[0]!.length, TINY.max_len - 2);
    assert.deepEqual(long, await generate(ref, [[1, 2]], { ...o, maxNewTokens: 100 }));
    console.log(`# decode: step logits relative difference ${worst.toExponential(2)}; greedy ${JSON.stringify(got)}`);
  } finally {
    ref.dispose();
    ort.dispose();
    Object.values(tensors).forEach((t) => t.dispose());
  }
});

test('ort decoder refuses prompts longer than max_len and step before prefill', async () => {
  const { host } = tinyWeights(1);
  const ort = new OrtTowerDecoder(host, TINY, CPU);
  await assert.rejects(() => ort.step([1]), /before prefill/);
  await assert.rejects(() => ort.prefill([Array.from({ length: TINY.max_len + 1 }, () => 3)]), /longer than the tower's max_len 24/);
  ort.dispose();
});

test('cache buckets: powers of two from 32, capped at max_len', () => {
  assert.deepEqual([1, 17, 32, 33, 64, 65, 100].map((n) => cacheBucket(n, 128)), [32, 32, 32, 64, 64, 128, 128]);
  assert.deepEqual([1, 24].map((n) => cacheBucket(n, 24)), [24, 24]);
  assert.deepEqual([33, 65, 72].map((n) => cacheBucket(n, 72)), [64, 72, 72]);
});

test('ort KV-cache decoder: the cache grows through its buckets (32, 64, max_len) with tfjs logits and decodes', async () => {
  await useCpu();
  const LONG = { ...TINY, max_len: 72 };
  const { host, tensors } = tinyWeights(11, 25, LONG);
  const prompts = [[1, 5, 9], [1, 30, 2, 8, 4, 6, 7]];
  const ref = new TfjsTowerDecoder(tensors, LONG);
  const ort = new OrtTowerDecoder(host, LONG, CPU);
  try {
    let a = await ref.prefill(prompts);
    let b = await ort.prefill(prompts);
    let worst = 0;
    // 7 + 64 = 71 columns: through the 32- and 64-slot graphs into the 72-slot one.
    for (let t = 0; t < 64; t++) {
      a.forEach((row, i) => (worst = Math.max(worst, relDiff(b[i]!, row))));
      const next = prompts.map((_, i) => (t * 5 + i * 11) % LONG.vocab_size);
      [a, b] = [await ref.step(next), await ort.step(next)];
    }
    assert.ok(worst < 1e-5, `step logits relative difference ${worst}`);
    const o = { maxNewTokens: 100, temperature: 0, topK: 0, stopToken: -1, seed: 1 };
    const got = await generate(ort, prompts, o);
    assert.equal(got[0]!.length, LONG.max_len - 7);
    assert.deepEqual(got, await generate(ref, prompts, o));
    // A new prompt batch of another size after a full one: the cache starts afresh.
    assert.deepEqual(await generate(ort, [[1, 2]], { ...o, maxNewTokens: 40 }), await generate(ref, [[1, 2]], { ...o, maxNewTokens: 40 }));
    console.log(`# bucketed decode: step logits relative difference ${worst.toExponential(2)}`);
  } finally {
    ref.dispose();
    ort.dispose();
    Object.values(tensors).forEach((t) => t.dispose());
  }
});
