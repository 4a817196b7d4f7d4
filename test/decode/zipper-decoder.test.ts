import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, type TrainEngine } from '../../src/engine/engine.js';
import { OrtEngine } from '../../src/engine/onnx/ort-engine.js';
import { TfjsEngine } from '../../src/engine/tfjs-engine.js';
import { initParams } from '../../src/model/params.js';
import { zipperModel } from '../../src/model/zipper-model.js';
import { decodeZipped, type ZipDecodeOptions } from '../../src/decode/zipper-decoder.js';
import { beamSearch } from '../../src/decode/beam.js';
import { wrap, type Segment } from '../../src/data/zip-batch.js';
import { useCpu } from '../helpers.js';
import { SPECIALS, tinyZipper } from '../model/zipper-fixture.js';

const z = tinyZipper({ gate_init: 1 });
const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1 };

async function engines(): Promise<[string, TrainEngine][]> {
  await useCpu();
  const model = zipperModel(z, ['text']);
  const p = initParams(model.specs, 21);
  const t = new TfjsEngine(model, OPT);
  const o = new OrtEngine(model, OPT, { providers: ['cpu'] });
  await t.load(initialState(model, new Map([...p].map(([k, v]) => [k, v.slice()]))));
  await o.load(initialState(model, new Map([...p].map(([k, v]) => [k, v.slice()]))));
  return [['tfjs', t], ['ort', o]];
}

// Ragged prompts: ASR-style (speech only) rows of different lengths, and a row with text already.
const prompts: Segment[][] = [
  [{ modality: 'speech', tokens: wrap('speech', [5, 9, 11, 4], SPECIALS), target: false }],
  [{ modality: 'speech', tokens: wrap('speech', [7, 3], SPECIALS), target: false }],
  [{ modality: 'speech', tokens: wrap('speech', [8, 8, 8, 12, 20, 6, 5], SPECIALS), target: false }],
];

const opts = (over: Partial<ZipDecodeOptions>): ZipDecodeOptions => ({ outputs: ['text'], shape: z, maxNew: (_m, p) => 4 + p.length * 2, useCache: true, beam: 1, ...over });

test('zipped decoding: the KV cache gives the tokens full recomputation gives, greedy and beam, on both engines', async () => {
  const results: Record<string, unknown> = {};
  for (const [label, eng] of await engines()) {
    for (const beam of [1, 3]) {
      const cached = await decodeZipped(eng, SPECIALS, prompts, opts({ beam, outputs: ['text', 'speech'] }));
      const full = await decodeZipped(eng, SPECIALS, prompts, opts({ beam, outputs: ['text', 'speech'], useCache: false }));
      assert.deepEqual(cached, full, `${label}, beam ${beam}`);
      assert.ok(cached.every((r) => r.text && r.speech), 'both modalities decoded');
      results[`${label}-${beam}`] = cached;
    }
    eng.dispose();
  }
  assert.deepEqual(results['ort-1'], results['tfjs-1'], 'engines agree (greedy)');
  assert.deepEqual(results['ort-3'], results['tfjs-3'], 'engines agree (beam 3)');
  // The length limit holds, and the rows are not all the same (the prompts matter).
  const g = results['ort-1'] as { text: number[] }[];
  g.forEach((r, b) => assert.ok(r.text.length <= 4 + 2, `row ${b}: ${r.text.length} tokens`));
});

test('beam search finds the sequence greedy search misses', async () => {
  // A toy model over tokens {0: eos, 1: a, 2: b}: after the prompt, "a" looks best (0.6) but every
  // continuation of it is poor; "b" (0.4) is followed by eos with probability 0.9.
  const table = (h: number[]): number[] => {
    if (h.length === 0) return [0, 0.6, 0.4];
    if (h[0] === 1) return [0.3, 0.35, 0.35];
    return [0.9, 0.05, 0.05];
  };
  const model = () => {
    let hyps: number[][] = [];
    const logits = () => hyps.map((h) => Float32Array.from(table(h), Math.log));
    return {
      start: async (k: number) => {
        hyps = Array.from({ length: k }, () => []);
        return logits();
      },
      step: async (parents: readonly number[], tokens: readonly number[]) => {
        hyps = parents.map((p, i) => [...hyps[p]!, tokens[i]!]);
        return logits();
      },
    };
  };
  // Greedy: "a", then the first of the tied best tokens until the budget of 5.
  assert.deepEqual(await beamSearch(model(), 1, [5], 0, { beam: 1 }), [[1, 1, 1, 1, 1]]);
  // Beam: "b <eos>" has probability 0.36; every hypothesis through "a" has at most 0.6 * 0.35.
  assert.deepEqual(await beamSearch(model(), 1, [5], 0, { beam: 3, lengthPenalty: 0 }), [[2]]);
  // Sampling: the same seed gives the same draw; across seeds both first tokens turn up.
  const draw = (seed: number) => beamSearch(model(), 1, [5], 0, { beam: 1, sample: { temperature: 1, topK: 0, seed } });
  assert.deepEqual(await draw(3), await draw(3));
  const firsts = new Set<number>();
  for (let seed = 0; seed < 20; seed++) firsts.add((await draw(seed))[0]![0]!);
  assert.deepEqual([...firsts].sort(), [1, 2]);
  await assert.rejects(beamSearch(model(), 1, [5], 0, { beam: 2, sample: { temperature: 1, topK: 0, seed: 0 } }), /sampling draws one hypothesis/);
});

test('single-decoder decoding: cached steps give the tokens full recomputation gives, restricted to the output modality', async () => {
  await useCpu();
  const { singleDecoderModel, singleDecoderShape } = await import('../../src/model/single-decoder.js');
  const { decodeSingle } = await import('../../src/decode/single-decoder.js');
  const { singleSequence } = await import('../../src/data/single-batch.js');
  const { leftPad } = await import('../../src/decode/padding.js');
  const shape = singleDecoderShape(z.text, z.speech);
  const vocab = { text: z.text.vocab_size, speech: z.speech.vocab_size };
  const model = singleDecoderModel(shape);
  const eng = new OrtEngine(model, OPT, { providers: ['cpu'] });
  await eng.load(initialState(model, initParams(model.specs, 4)));
  for (const beam of [1, 2]) {
    const got = await decodeSingle(eng, SPECIALS, prompts, { outputs: ['text', 'speech'], shape, vocab, beam, maxNew: () => 5 });
    for (const r of got) {
      assert.ok(r.text!.every((t) => t < vocab.text), 'text ids only while decoding text');
      assert.ok(r.speech!.every((t) => t >= 1 && t < vocab.speech), 'speech ids only while decoding speech');
    }
    if (beam > 1) continue;
    // Reference: each row's whole sequence through `prefill` for every new token, argmax within the modality.
    for (let b = 0; b < prompts.length; b++) {
      const segs: Segment[] = [...prompts[b]!, { modality: 'text', tokens: [SPECIALS.text.bos], target: false }];
      const out: number[] = [];
      for (let t = 0; t < 5; t++) {
        const ids = singleSequence(segs, vocab).ids;
        const p = leftPad([ids], shape.max_len);
        const r = await eng.call('prefill', { ids: { data: p.ids, shape: [1, p.S] }, positions: { data: p.positions, shape: [1, p.S] }, mask: { data: p.mask, shape: [1, 1, p.S, p.S] } }, { fetch: ['logits'] });
        const row = (r.logits!.data as Float32Array).slice(0, vocab.text);
        const tok = row.indexOf(Math.max(...row));
        if (tok === SPECIALS.text.eos) break;
        out.push(tok);
        (segs[segs.length - 1]!.tokens as number[]).push(tok);
      }
      assert.deepEqual(got[b]!.text, out, `row ${b}`);
    }
  }
  eng.dispose();
});

test('zipped decoding: the cache grows through its buckets to max_len with the tokens recomputation gives', async () => {
  const [, [, eng]] = await engines();
  // Speech after speech: the speech tower's sequence runs from 16 columns to its max_len (40),
  // through cache buckets 32 and 40.
  const o = opts({ outputs: ['speech'], maxNew: () => z.speech.max_len - 16 });
  const cached = await decodeZipped(eng, SPECIALS, prompts, o);
  const full = await decodeZipped(eng, SPECIALS, prompts, { ...o, useCache: false });
  assert.deepEqual(cached, full);
  assert.ok(cached.some((r) => r.speech!.length > 16), 'some row decodes past the first bucket');
  eng.dispose();
});
