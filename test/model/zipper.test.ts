import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { tfjsOps } from '../../src/engine/tfjs-ops.js';
import { causalMask } from '../../src/model/attention.js';
import { towerForward } from '../../src/model/tower.js';
import { scoped, zippedLayers, zipperForward, zipperSpecs } from '../../src/model/zipper.js';
import { towerSequences, zipInputs, type Segment } from '../../src/data/zip-batch.js';
import { maxAbsDiff, useCpu } from '../helpers.js';
import { LENS, SPECIALS, TINY_SPEECH, tinyExamples, tinyZipper, toTf, zipTensors } from './zipper-fixture.js';

test('zipped layers pair n * floor(L / N) across towers of different depths', () => {
  assert.deepEqual(zippedLayers(tinyZipper({ layers: 1 })), { text: [1], speech: [2] });
  assert.deepEqual(zippedLayers(tinyZipper({ layers: 2 })), { text: [0, 1], speech: [0, 1] });
  assert.throws(() => zippedLayers(tinyZipper({ layers: 3 })), /zip.layers 3 is not in 1..2/);
});

test('with input projections off and gates at 0, a fresh zip gives each tower its unimodal logits exactly', async () => {
  await useCpu();
  const z = tinyZipper({ gate_init: 0, input_projection: { text: false, speech: false } });
  const p = zipTensors(z);
  const b = toTf(zipInputs(tinyExamples(4).map(towerSequences), LENS));
  const out = zipperForward(tfjsOps, p, z, {
    text: { ids: b.text_ids!, positions: b.text_pos!, mask: tf.tensor2d(causalMask(LENS.text), [LENS.text, LENS.text]), xmask: b.text_xmask!, xgate: b.text_xgate! },
    speech: { ids: b.speech_ids!, positions: b.speech_pos!, mask: tf.tensor2d(causalMask(LENS.speech), [LENS.speech, LENS.speech]), xmask: b.speech_xmask!, xgate: b.speech_xgate! },
  });
  for (const m of ['text', 'speech'] as const) {
    const alone = towerForward(tfjsOps, scoped(p, `${m}.`), z[m], { ids: b[`${m}_ids`]!, positions: b[`${m}_pos`]!, mask: tf.tensor2d(causalMask(LENS[m]), [LENS[m], LENS[m]]) }).logits;
    assert.equal(maxAbsDiff(await out.logits[m].data(), await alone.data()), 0, `${m} logits differ`);
  }
  // With the gates open the same zip does change the logits: the identity is not vacuous.
  const open = zipperForward(tfjsOps, zipTensors(tinyZipper({ gate_init: 0.5, input_projection: { text: false, speech: false } })), z, {
    text: { ids: b.text_ids!, positions: b.text_pos!, mask: tf.tensor2d(causalMask(LENS.text), [LENS.text, LENS.text]), xmask: b.text_xmask!, xgate: b.text_xgate! },
    speech: { ids: b.speech_ids!, positions: b.speech_pos!, mask: tf.tensor2d(causalMask(LENS.speech), [LENS.speech, LENS.speech]), xmask: b.speech_xmask!, xgate: b.speech_xgate! },
  });
  assert.ok(maxAbsDiff(await open.logits.text.data(), await out.logits.text.data()) > 1e-4);
});

/** Both towers' logits for one interleaved example, as nested arrays [tower position][vocab]. */
function logitsOf(p: Record<string, tf.Tensor>, ex: Segment[], z = tinyZipper()) {
  const b = toTf(zipInputs([towerSequences(ex)], LENS));
  const mask = (S: number) => tf.tensor2d(causalMask(S), [S, S]);
  const out = zipperForward(tfjsOps, p, z, {
    text: { ids: b.text_ids!, positions: b.text_pos!, mask: mask(LENS.text), xmask: b.text_xmask!, xgate: b.text_xgate! },
    speech: { ids: b.speech_ids!, positions: b.speech_pos!, mask: mask(LENS.speech), xmask: b.speech_xmask!, xgate: b.speech_xgate! },
  });
  return { text: (out.logits.text.arraySync() as number[][][])[0]!, speech: (out.logits.speech.arraySync() as number[][][])[0]! };
}

test("zip.context_projection_layers 0: the cross-attention reads the other tower's states as they are (towers of one width only)", async () => {
  await useCpu();
  assert.throws(() => zipperSpecs(tinyZipper({ context_projection_layers: 0 })), /zip.context_projection_layers 0 .*\(text 16, speech 12\)/);
  const z = tinyZipper({ context_projection_layers: 0, context_norm: true, speech: { ...TINY_SPEECH, d_model: 16 } });
  const names = zipperSpecs(z).map((s) => s.name);
  assert.ok(!names.some((n) => n.includes('ctx_proj')) && names.includes('zip.text.x.0.ctx_ln.weight'));
  // ASR: the text tower's outputs follow the audio, through the cross-attention alone.
  const p = zipTensors(z);
  const asr = (units: number[]): Segment[] => [
    { modality: 'speech', tokens: [1, ...units, 2], target: false },
    { modality: 'text', tokens: [1, 5, 6, 2], target: true },
  ];
  const a = logitsOf(p, asr([7, 8, 9]), z).text;
  const b = logitsOf(p, asr([7, 8, 10]), z).text;
  assert.ok(maxAbsDiff(a.flat(), b.flat()) > 1e-4, 'text logits ignore the audio');
});

test('interleaved masking: changing a later token never changes earlier outputs of either tower', async () => {
  await useCpu();
  const p = zipTensors(tinyZipper());
  // Linear order: text [1 5 6 2] (0-3), speech [1 7 8 9 2] (4-8), text [1 4 2] (9-11), speech [1 3 2] (12-14).
  const ex: Segment[] = [
    { modality: 'text', tokens: [1, 5, 6, 2], target: false },
    { modality: 'speech', tokens: [1, 7, 8, 9, 2], target: true },
    { modality: 'text', tokens: [1, 4, 2], target: true },
    { modality: 'speech', tokens: [1, 3, 2], target: true },
  ];
  const base = logitsOf(p, ex);
  const seq = towerSequences(ex);
  // Change each token in turn; every position of either tower at or before it in linear order keeps its logits.
  for (const [m, k] of [['speech', 2], ['text', 5], ['speech', 6], ['text', 1]] as const) {
    const changed = ex.map((s) => ({ ...s, tokens: [...s.tokens] }));
    let idx = k;
    const seg = changed.filter((s) => s.modality === m).find((s) => (idx < s.tokens.length ? true : ((idx -= s.tokens.length), false)))!;
    seg.tokens[idx] = seg.tokens[idx]! + 10;
    const now = logitsOf(p, changed);
    const at = seq[m].lin[k]!;
    for (const t of ['text', 'speech'] as const)
      seq[t].lin.forEach((lin, i) => {
        if (lin < at) assert.deepEqual(now[t][i], base[t][i], `${t} position ${i} (linear ${lin}) changed when ${m} token ${k} (linear ${at}) did`);
      });
    // ... and something later does change (the test is not vacuous).
    const later = (['text', 'speech'] as const).some((t) => seq[t].lin.some((lin, i) => lin > at && maxAbsDiff(now[t][i]!, base[t][i]!) > 0));
    assert.ok(later, `changing ${m} token ${k} changed nothing after it`);
  }
});

test('a position that sees none of the other tower gets no cross-attention (no softmax over masked keys)', () => {
  const ex = tinyExamples(2);
  const rows = ex.map(towerSequences);
  const b = zipInputs(rows, LENS);
  // ASR row 0: every text position sees the whole speech segment; no speech position sees text.
  const xg = (m: string) => Array.from(b[`${m}_xgate`]!.data);
  assert.deepEqual(xg('speech').slice(0, LENS.speech), new Array(LENS.speech).fill(0));
  assert.deepEqual(xg('text').slice(0, rows[0]!.text.ids.length), new Array(rows[0]!.text.ids.length).fill(1));
  // TTS row 1: the reverse.
  assert.deepEqual(xg('text').slice(LENS.text, 2 * LENS.text), new Array(LENS.text).fill(0));
  assert.equal(SPECIALS.text.bos, 1);
});
