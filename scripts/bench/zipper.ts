/**
 * Issue 4's figures: the zipped model's training speed with both towers trainable and with the
 * text tower frozen, and ASR decoding with and without the KV cache, all on the ONNX engine
 * (one intra-op thread), alternating round by round so load hits both sides of a ratio alike.
 *
 * Model: two reference towers (d=128, 4 layers, 4 heads; text vocab 1024, speech 1027), 2 zipped
 * layers, input projections on, gates open (tanh 0.46) so cross-attention does real work.
 * Batch: 16 examples, half ASR and half TTS, 120 speech units and 24 text tokens each (about the
 * built-in corpus's median utterance), padded to 128 and 32 columns as fine-tuning pads them.
 */
import { initialState, type TrainEngine } from '../../src/engine/engine.js';
import { OrtEngine } from '../../src/engine/onnx/ort-engine.js';
import { initParams } from '../../src/model/params.js';
import { frozenTowers, zipperModel, type Freeze } from '../../src/model/zipper-model.js';
import type { ZipperShape } from '../../src/model/zipper.js';
import { decodeZipped } from '../../src/decode/zipper-decoder.js';
import { taskExample, wrap, zipBatch, type Specials } from '../../src/data/zip-batch.js';
import { Rng } from '../../src/util/rng.js';
import { LR, OPT, loadAverage, median, printTable, ratio, towerShape } from './common.js';

const SP: Specials = { text: { bos: 1, eos: 2 }, speech: { bos: 1, eos: 2 } };
const SHAPE: ZipperShape = {
  text: { ...towerShape(128), vocab_size: 1024, max_len: 128 },
  speech: { ...towerShape(128), vocab_size: 1027, max_len: 256 },
  layers: 2,
  input_projection: { text: true, speech: true },
  input_projection_layers: 3,
  context_projection_layers: 2,
  context_norm: false,
  cross_init: 'gpt2',
  gate_init: 0.5,
};
const B = 16;
const UNITS = 120;
const WORDS = 24;

function utterances(n: number, seed: number) {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({
    text: Array.from({ length: WORDS }, () => 3 + rng.int(1021)),
    speech: Array.from({ length: UNITS }, () => 3 + rng.int(1024)),
  }));
}

export interface ZipperBench {
  train: { both_trainable: number; text_frozen: number; text_frozen_no_arena: number };
  decode: { cached: number; full: number; same_tokens: boolean };
  setup: string;
}

export async function zipperBench(o: { steps: number; rounds: number }): Promise<ZipperBench> {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const batch = zipBatch(utterances(B, 1).map((u, i) => taskExample(u, i % 2 ? 'tts' : 'asr', SP)), { text: 32, speech: 128 }, ['text', 'speech']);
  const tokens = B * (UNITS + WORDS + 4);
  const p0 = initParams(zipperModel(SHAPE, []).specs, 0);
  // Fine-tuning runs without onnxruntime's memory arena (many batch shapes; runner.ts): the third
  // side measures what that costs.
  const sides: [string, Freeze, boolean][] = [['none', 'none', true], ['text', 'text', true], ['text-no-arena', 'text', false]];
  const engines = new Map<string, TrainEngine>();
  for (const [label, f, memoryArena] of sides) {
    const model = zipperModel(SHAPE, frozenTowers(f));
    const e = new OrtEngine(model, OPT, { providers: ['cpu'], intraOpNumThreads: 1, memoryArena });
    await e.load(initialState(model, new Map([...p0].map(([k, v]) => [k, v.slice()]))));
    await e.trainStep(batch, 1, LR); // compile + warm up
    engines.set(label, e);
  }
  const rates: Record<string, number[]> = { none: [], text: [], 'text-no-arena': [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const [f, e] of engines) {
      const times: number[] = [];
      for (let i = 0; i < o.steps; i++) {
        const t0 = performance.now();
        await e.trainStep(batch, i + 2, LR);
        times.push((performance.now() - t0) / 1000);
      }
      rates[f]!.push(tokens / median(times));
    }
    log(`  zipper train, round ${r + 1}/${o.rounds} (${loadAverage().split(' ')[0]} load): both trainable ${rates.none!.at(-1)!.toFixed(0)}, text frozen ${rates.text!.at(-1)!.toFixed(0)}, text frozen without arena ${rates['text-no-arena']!.at(-1)!.toFixed(0)} tokens/s`);
  }
  engines.get('text')!.dispose();
  engines.get('text-no-arena')!.dispose();

  // ASR decoding: 16 utterances of 120 units, 24 new text tokens each (random weights rarely stop early).
  const dec = engines.get('none')!;
  const prompts = utterances(B, 2).map((u) => [{ modality: 'speech' as const, tokens: wrap('speech', u.speech, SP), target: false }]);
  const run = (useCache: boolean) => decodeZipped(dec, SP, prompts, { outputs: ['text'], shape: SHAPE, beam: 1, useCache, maxNew: () => WORDS });
  const count = (out: Awaited<ReturnType<typeof run>>) => out.reduce((n, r) => n + r.text!.length, 0);
  const first = { cached: await run(true), full: await run(false) }; // compile + warm up
  const dr: Record<'cached' | 'full', number[]> = { cached: [], full: [] };
  for (let r = 0; r < Math.max(1, Math.ceil(o.rounds / 2)); r++) {
    for (const k of ['cached', 'full'] as const) {
      const t0 = performance.now();
      const out = await run(k === 'cached');
      dr[k].push(count(out) / ((performance.now() - t0) / 1000));
    }
    log(`  zipper ASR decode, round ${r + 1}: KV cache ${dr.cached.at(-1)!.toFixed(0)}, full recomputation ${dr.full.at(-1)!.toFixed(0)} tokens/s`);
  }
  dec.dispose();
  const res: ZipperBench = {
    train: { both_trainable: median(rates.none!), text_frozen: median(rates.text!), text_frozen_no_arena: median(rates['text-no-arena']!) },
    decode: { cached: median(dr.cached), full: median(dr.full), same_tokens: JSON.stringify(first.cached) === JSON.stringify(first.full) },
    setup: `two d=128 towers (4 layers, 4 heads), 2 zipped layers, batch ${B} (ASR/TTS half each, ${UNITS} units + ${WORDS} text tokens), ort cpu 1 thread`,
  };
  console.log(`\n## Zipped model (${res.setup}; load average ${loadAverage()})\n`);
  printTable(
    ['measure', 'tokens/s', 'ratio'],
    [
      ['train, both towers trainable', res.train.both_trainable, '1.00x'],
      ['train, text tower frozen', res.train.text_frozen, ratio(res.train.text_frozen, res.train.both_trainable)],
      ['train, text tower frozen, no memory arena (as `zipper fuse` runs)', res.train.text_frozen_no_arena, ratio(res.train.text_frozen_no_arena, res.train.both_trainable)],
      [`ASR greedy decode, KV cache (${B} utterances, ${WORDS} new tokens each)`, res.decode.cached, ratio(res.decode.cached, res.decode.full)],
      ['ASR greedy decode, full recomputation each step', res.decode.full, '1.00x'],
    ],
  );
  console.log(`cached and recomputed decoding give the same tokens: ${res.decode.same_tokens ? 'yes' : 'NO'}`);
  return res;
}
