import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignedSubset, type AlignedUtterance } from '../../src/data/aligned.js';
import { singleBatch } from '../../src/data/single-batch.js';
import { taskExample, zipBatch } from '../../src/data/zip-batch.js';
import { MixSampler } from '../../src/train/finetune-data.js';
import { sharedId } from '../../src/model/single-decoder.js';
import { SPECIALS } from '../model/zipper-fixture.js';

const utts: AlignedUtterance[] = Array.from({ length: 1000 }, (_, i) => ({ id: `u${i}`, speaker: `${i % 7}`, seconds: 1 + (i % 5), transcript: 'X', text: [3 + (i % 9)], speech: Array.from({ length: 4 + (i % 13) }, (_, j) => 3 + j) }));

test('aligned fractions are nested, deterministic subsets by utterance', () => {
  const ids = (f: number, seed = 1) => alignedSubset(utts, f, seed).map((u) => u.id);
  const one = ids(0.01);
  const ten = ids(0.1);
  assert.equal(one.length, 10);
  assert.equal(ten.length, 100);
  assert.ok(one.every((id) => ten.includes(id)), 'every utterance of the 1% subset is in the 10% subset');
  assert.deepEqual(ids(0.1), ten, 'deterministic');
  assert.notDeepEqual(ids(0.1, 2), ten, 'the seed chooses the subset');
  assert.equal(ids(1).length, 1000);
  assert.throws(() => alignedSubset(utts, 0, 1), /not in \(0, 1\]/);
  assert.throws(() => alignedSubset(utts, 1.01, 1), /not in \(0, 1\]/);
  assert.throws(() => alignedSubset(utts, 0.0001, 1), /selects none/);
});

test('the mix sampler: ASR : TTS by sample count, every utterance once per epoch per task, a pure function of the step', () => {
  const pools = { aligned: utts.slice(0, 100), text: [], speech: [] };
  const s = new MixSampler(pools, { asr: 1, tts: 1.26, unimodal: 0 }, 8, 5);
  assert.equal(s.perEpoch, Math.floor(226 / 8));
  const epoch = Array.from({ length: s.perEpoch }, (_, i) => s.at(i)).flat();
  const asr = epoch.filter((r) => r.kind === 'asr');
  const tts = epoch.filter((r) => r.kind === 'tts');
  assert.ok(Math.abs(asr.length - 100) <= 8 && Math.abs(tts.length - 126) <= 8, `${asr.length} ASR, ${tts.length} TTS`);
  assert.ok(new Set(asr.map((r) => r.index)).size >= 92, 'ASR examples cover the utterances');
  // The same step gives the same batch from a fresh sampler (resume), and a later epoch another order.
  const again = new MixSampler(pools, { asr: 1, tts: 1.26, unimodal: 0 }, 8, 5);
  assert.deepEqual(again.at(s.perEpoch + 3), s.at(s.perEpoch + 3));
  assert.notDeepEqual(s.at(s.perEpoch), s.at(0));
  assert.throws(() => new MixSampler({ aligned: utts.slice(0, 2), text: [], speech: [] }, { asr: 1, tts: 0, unimodal: 0 }, 8, 5), /fewer than one batch/);
});

test('zipper batches: each tower\'s share of the targets scales its loss; a tower with none in the batch counts zero', () => {
  const u = { text: [5, 6, 7], speech: [8, 9, 10, 11] };
  const b = zipBatch([taskExample(u, 'asr', SPECIALS), taskExample(u, 'tts', SPECIALS)], { text: 8, speech: 8 }, ['text', 'speech']);
  // ASR predicts 3 words + <eos> = 4 text targets; TTS 4 units + <eoa> = 5 speech targets.
  assert.ok(Math.abs(b.text_scale!.data[0]! - 4 / 9) < 1e-7);
  assert.ok(Math.abs(b.speech_scale!.data[0]! - 5 / 9) < 1e-7);
  assert.deepEqual(Array.from(b.text_targets!.data.slice(0, 4)), [5, 6, 7, 2]);
  const asrOnly = zipBatch([taskExample(u, 'asr', SPECIALS)], { text: 8, speech: 8 }, ['text', 'speech']);
  assert.equal(asrOnly.speech_scale!.data[0], 0);
  assert.ok((asrOnly.speech_weights!.data as Float32Array).every((w) => w === 1), 'weights of 1 keep the masked mean finite');
});

test('single-decoder batches: shared ids, targets only on the output segment, per-modality normalisation', () => {
  const v = { text: 20, speech: 12 };
  const u = { text: [5, 6], speech: [3, 4, 5] };
  const b = singleBatch([taskExample(u, 'asr', SPECIALS), taskExample(u, 'tts', SPECIALS)], 12, v, 'modality');
  const ids = Array.from(b.ids!.data.slice(0, 12));
  // ASR: <boa> 3 4 5 <eoa> <bos> 5 6 <eos> in shared ids.
  assert.deepEqual(ids.slice(0, 9), [sharedId('speech', 1, v), 22, 23, 24, sharedId('speech', 2, v), 1, 5, 6, 2]);
  const w = Array.from(b.weights!.data as Float32Array);
  // 3 text targets in row 0 (5, 6, <eos>), 4 speech targets in row 1: each modality sums to 1.
  assert.ok(Math.abs(w.slice(0, 12).reduce((a, x) => a + x, 0) - 1) < 1e-6);
  assert.ok(Math.abs(w.slice(12).reduce((a, x) => a + x, 0) - 1) < 1e-6);
  assert.equal(w.filter((x) => x > 0).length, 7);
  const tok = singleBatch([taskExample(u, 'asr', SPECIALS)], 12, v, 'token');
  assert.deepEqual(Array.from(tok.weights!.data as Float32Array).filter((x) => x > 0), [1, 1, 1]);
});
