import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import { flatten } from '../../../src/engine/onnx/layout.js';
import { OrtRunner } from '../../../src/engine/onnx/runner.js';
import { buildLogitsGraph, buildStepGraph, inferenceSlots } from '../../../src/engine/onnx/tower-graphs.js';
import { causalMask } from '../../../src/model/attention.js';
import { initParams } from '../../../src/model/params.js';
import { towerSpecs } from '../../../src/model/tower.js';
import { TINY, randomRows } from '../../helpers.js';
import { relDiff } from './parity-helpers.js';

const ops = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => `${n.domain ? `${n.domain}.` : ''}${n.opType}`);

test('inference graphs record fused kernels; fused: false keeps to the standard opset', () => {
  const fused = ops(buildLogitsGraph(TINY, 2, 9).toBytes());
  assert.equal(fused.filter((o) => o === 'com.microsoft.Gelu').length, TINY.n_layers);
  assert.ok(!fused.includes('Erf'), 'no Erf chain beside the fused Gelu');
  // Attention's 1/sqrt(d_head) rides on the score product's alpha: no Mul left at all.
  assert.ok(!fused.includes('Mul'), fused.join(' '));
  const plain = ops(buildStepGraph(TINY, 2, { fused: false }).toBytes());
  assert.ok(!plain.some((o) => o.endsWith('Gelu')) && plain.includes('Erf'));
  // Nothing unused is left behind by the rewrites, and outputs need no Identity copies.
  assert.ok(!fused.includes('Identity') && !plain.includes('Identity'));
});

test('logits graph: flat, per-weight and baked weights give the same logits', async () => {
  const w = initParams(towerSpecs(TINY), 6);
  const [B, S] = [2, 9];
  const ids = Int32Array.from(randomRows(B, S, TINY.vocab_size, 2).flatMap((r) => [...r]));
  const pos = Int32Array.from({ length: B * S }, (_, i) => i % S);
  const feeds = { ids: { data: ids, shape: [B, S] }, positions: { data: pos, shape: [B, S] }, mask: { data: causalMask(S), shape: [S, S] } };
  const r = await OrtRunner.start({ providers: ['cpu'] });
  try {
    const slots = inferenceSlots(TINY);
    await r.setSlot('params', { data: flatten(slots, w, 'weights'), shape: [slots.reduce((n, s) => n + s.size, 0)] });
    for (const s of slots) await r.setSlot(`w:${s.name}`, { data: w.get(s.name)!, shape: s.shape });
    await r.load('flat', buildLogitsGraph(TINY, B, S).toBytes());
    await r.load('inputs', buildLogitsGraph(TINY, B, S, [S, S], { weights: 'inputs' }).toBytes());
    await r.load('baked', buildLogitsGraph(TINY, B, S, [S, S], { weights: w }).toBytes());
    await r.load('plain', buildLogitsGraph(TINY, B, S, [S, S], { fused: false }).toBytes());
    const get = async (key: string, slotFeeds: Record<string, string>) => (await r.run(key, { feeds, slotFeeds, fetch: ['logits'] })).logits!.data;
    const ref = await get('plain', { params: 'params' });
    for (const [key, slotFeeds] of [['flat', { params: 'params' }], ['inputs', Object.fromEntries(slots.map((s) => [s.name, `w:${s.name}`]))], ['baked', {}]] as const) {
      const d = relDiff(await get(key, slotFeeds), ref);
      assert.ok(d < 1e-6, `${key}: relative difference ${d} to the unfused graph`);
    }
  } finally {
    r.dispose();
  }
});
