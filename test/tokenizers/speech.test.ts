import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpeechTokenizerConfig } from '../../src/config/speech-schema.js';
import { kmeans, nearestScan, scanSearch, squaredNorms } from '../../src/tokenizers/speech/kmeans.js';
import { unitsToWav } from '../../src/tokenizers/speech/invert.js';
import { LogMel, frameCount, frameSpec, melCentres, stackFrames } from '../../src/tokenizers/speech/mel.js';
import { ortSearch } from '../../src/tokenizers/speech/nearest.js';
import { entropyBits, speakerDominatedShare, totalVariation } from '../../src/tokenizers/speech/stats.js';
import { SpeechTokenizer, UNIT_OFFSET } from '../../src/tokenizers/speech/tokenizer.js';
import { Rng } from '../../src/util/rng.js';
import { RATE, speechLike, tone } from './speech-synth.js';

const tinyConfig = (over: Record<string, unknown> = {}) =>
  SpeechTokenizerConfig.parse({ kmeans: { codebook_size: 32, train_vectors: 3000, init_vectors: 1500, iterations: 6, seed: 7 }, ...over });

/** Shared by several tests: training takes a moment. */
let trained: Promise<SpeechTokenizer> | undefined;
const tinyTokenizer = () => (trained ??= SpeechTokenizer.trainOnSignals(Array.from({ length: 16 }, (_, i) => speechLike(2, i, 100 + 25 * (i % 4))), RATE, tinyConfig()));

describe('log-mel features', () => {
  const cfg = SpeechTokenizerConfig.parse({}).mel;
  const mel = new LogMel(cfg);

  it('puts a pure tone in the mel bin centred on it', () => {
    const centres = melCentres(cfg);
    for (const m of [3, 12, 30, 55, 78]) {
      const frames = mel.compute(tone(centres[m]!, 0.5));
      const row = Array.from(frames.subarray(20 * cfg.n_mels, 21 * cfg.n_mels));
      const peak = row.indexOf(Math.max(...row));
      assert.equal(peak, m, `a ${centres[m]!.toFixed(0)} Hz tone peaked in bin ${peak} (centre ${centres[peak]!.toFixed(0)} Hz)`);
    }
    assert.ok(Math.abs(centres[26]! - 1006) < 1 && Math.abs(centres[79]! - 7699) < 1, 'Slaney mel scale, 0-8000 Hz');
  });

  it('has 100 frames a second and stacks them 4 to a unit, covering every frame', () => {
    const spec = frameSpec(cfg);
    assert.deepEqual([spec.win, spec.hop, spec.nBins], [400, 160, 257]);
    assert.equal(frameCount(RATE, spec), 98);
    assert.equal(frameCount(100, spec), 1);
    const frames = mel.compute(tone(300, 1));
    assert.equal(frames.length, 98 * 80);
    const stacked = stackFrames(frames, 80, 4);
    assert.equal(stacked.length, 25 * 320);
    // The last unit repeats the last frame twice (98 = 24 * 4 + 2).
    assert.deepEqual(stacked.subarray(24 * 320 + 240, 25 * 320), frames.subarray(97 * 80, 98 * 80));
  });

  it('floors digital silence at floor_db below the loudest value', () => {
    const x = new Float32Array(RATE);
    x.set(tone(500, 0.5), 0);
    const frames = mel.compute(x);
    const max = Math.max(...frames);
    const min = Math.min(...frames);
    assert.ok(Math.abs(max - min - 8 * Math.LN10) < 1e-4, `range ${max - min}`);
  });
});

describe('k-means', () => {
  it('recovers well-separated clusters', async () => {
    const rng = new Rng(3);
    const k = 6;
    const dim = 8;
    const centres = Array.from({ length: k }, () => Array.from({ length: dim }, () => 10 * rng.normal()));
    const n = 600;
    const data = new Float32Array(n * dim);
    const truth: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = i % k;
      truth.push(c);
      for (let d = 0; d < dim; d++) data[i * dim + d] = centres[c]![d]! + 0.1 * rng.normal();
    }
    const r = await kmeans({ data, n, dim }, { k, iterations: 5, initVectors: n, seed: 1 });
    for (const c of centres) {
      const nearest = Math.min(...Array.from({ length: k }, (_, j) => Math.hypot(...c.map((v, d) => v - r.centroids[j * dim + d]!))));
      assert.ok(nearest < 0.1, `a true centre is ${nearest} from the nearest centroid`);
    }
    // Each found cluster holds exactly one true cluster.
    const units = new Int32Array(n);
    nearestScan(data, 0, n, dim, r.centroids, squaredNorms(r.centroids, k, dim), k, units);
    const map = new Map<number, number>();
    truth.forEach((t, i) => {
      if (!map.has(t)) map.set(t, units[i]!);
      assert.equal(units[i], map.get(t));
    });
    assert.equal(new Set(map.values()).size, k);
  });

  it('is deterministic for a seed', async () => {
    const rng = new Rng(9);
    const x = { data: Float32Array.from({ length: 400 * 5 }, () => rng.normal()), n: 400, dim: 5 };
    const a = await kmeans(x, { k: 7, iterations: 4, initVectors: 200, seed: 11 });
    const b = await kmeans(x, { k: 7, iterations: 4, initVectors: 200, seed: 11 });
    const c = await kmeans(x, { k: 7, iterations: 4, initVectors: 200, seed: 12 });
    assert.deepEqual(a.centroids, b.centroids);
    assert.notDeepEqual(a.centroids, c.centroids);
    assert.ok(a.history.at(-1)! <= a.history[0]!);
  });
});

describe('onnxruntime nearest-centroid search', () => {
  it('gives exactly the reference scan units and scores, near ties included', async () => {
    const rng = new Rng(5);
    const k = 40;
    const dim = 24;
    const c = Float32Array.from({ length: k * dim }, () => rng.normal());
    // Exact and near duplicates of centroid 0: ties the float32 product cannot resolve.
    c.set(c.subarray(0, dim), 1 * dim);
    for (let d = 0; d < dim; d++) c[2 * dim + d] = c[d]! + 1e-6 * rng.normal();
    // Ten copies of centroid 29: more tied candidates than the float32 top-k holds.
    for (let j = 30; j < 40; j++) c.set(c.subarray(29 * dim, 30 * dim), j * dim);
    const n = 1500; // three blocks of 512, the last one partly filled
    const data = Float32Array.from({ length: n * dim }, () => rng.normal());
    for (let i = 0; i < 100; i++) data.set(c.subarray(0, dim), i * dim);
    for (let i = 100; i < 110; i++) data.set(c.subarray(29 * dim, 30 * dim), i * dim);
    const x = { data, n, dim };
    const ref = { units: new Int32Array(n), scores: new Float64Array(n) };
    await (await scanSearch(c, k, dim)).nearest(x, ref.units, ref.scores);
    const stats = { rows: 0, rechecked: 0, scanned: 0 };
    const s = await ortSearch(c, k, dim, 1, stats);
    const got = { units: new Int32Array(n), scores: new Float64Array(n) };
    await s.nearest(x, got.units, got.scores);
    s.dispose();
    assert.deepEqual(got.units, ref.units);
    assert.deepEqual(got.scores, ref.scores);
    assert.equal(stats.rows, n);
    assert.ok(stats.rechecked >= 110, `only ${stats.rechecked} rows were rechecked`);
    assert.ok(stats.scanned >= 10, `only ${stats.scanned} rows were scanned`);
    assert.equal(ref.units[0], 0, 'an exact tie goes to the lower index');
    assert.equal(ref.units[100], 29);
  });
});

describe('SpeechTokenizer', () => {
  it('has the shared vocabulary convention', async () => {
    const tk = await tinyTokenizer();
    assert.deepEqual([tk.pad, tk.bos, tk.eos, tk.vocabSize], [0, 1, 2, 35]);
    const ids = tk.encodeAudio(speechLike(1, 99), RATE);
    assert.equal(ids.length, 25);
    assert.ok(ids.every((id) => id >= UNIT_OFFSET && id < tk.vocabSize));
  });

  it('round-trips through JSON to identical ids', async () => {
    const tk = await tinyTokenizer();
    const again = SpeechTokenizer.fromJSON(tk.toJSON(), 'mem.json');
    const x = speechLike(3, 123, 140);
    assert.deepEqual(again.encodeAudio(x, RATE), tk.encodeAudio(x, RATE));
    assert.equal(again.toJSON(), tk.toJSON());
  });

  it('trains the same codebook for the same seed, another for another seed', async () => {
    const sigs = Array.from({ length: 6 }, (_, i) => speechLike(2, 50 + i));
    const cfg = tinyConfig({ kmeans: { codebook_size: 8, train_vectors: 300, init_vectors: 300, iterations: 3, seed: 1 } });
    const a = await SpeechTokenizer.trainOnSignals(sigs, RATE, cfg);
    const b = await SpeechTokenizer.trainOnSignals(sigs, RATE, cfg);
    const c = await SpeechTokenizer.trainOnSignals(sigs, RATE, { ...cfg, kmeans: { ...cfg.kmeans, seed: 2 } });
    assert.equal(a.toJSON(), b.toJSON());
    assert.notDeepEqual(a.codebook, c.codebook);
  });

  it('names the source on a wrong sample rate', async () => {
    const tk = await tinyTokenizer();
    assert.throws(() => tk.encodeAudio(new Float32Array(8000), 8000, 'clips/a.wav'), /clips\/a\.wav: sample rate 8000 Hz, but the speech tokenizer expects 16000 Hz/);
  });

  it('rejects a corrupt file, naming it', async () => {
    const json = JSON.parse((await tinyTokenizer()).toJSON());
    const load = (text: string) => () => SpeechTokenizer.fromJSON(text, 'tok/speech-tokenizer.json');
    assert.throws(load('{"format": "zipper-speech-tok'), /speech tokenizer tok\/speech-tokenizer\.json: not valid JSON/);
    assert.throws(load(JSON.stringify({ ...json, format: 'other' })), /tok\/speech-tokenizer\.json: not a speech tokenizer/);
    const truncated = { ...json, codebook: { ...json.codebook, data: json.codebook.data.slice(0, 100) } };
    assert.throws(load(JSON.stringify(truncated)), /tok\/speech-tokenizer\.json: codebook has \d+ bytes, expected 40960 \(truncated\?\)/);
    const flipped = json.codebook.data.startsWith('A') ? 'B' : 'A';
    const corrupt = { ...json, codebook: { ...json.codebook, data: flipped + json.codebook.data.slice(1) } };
    assert.throws(load(JSON.stringify(corrupt)), /tok\/speech-tokenizer\.json: codebook checksum mismatch/);
    assert.throws(load(JSON.stringify({ ...json, config: { ...json.config, stack: 0 } })), /tok\/speech-tokenizer\.json: invalid config: stack/);
  });

  it('turns units back into audio that re-tokenizes mostly to the same units', async () => {
    const tk = await tinyTokenizer();
    let agree = 0;
    let total = 0;
    for (const seed of [200, 201, 202]) {
      const ids = tk.encodeAudio(speechLike(2, seed, 130), RATE);
      const wav = unitsToWav(tk, [tk.bos, ...ids, tk.eos]);
      assert.equal(wav.length, (ids.length * 4 - 1) * 160 + 400);
      const back = tk.encodeAudio(wav, RATE);
      assert.equal(back.length, ids.length);
      ids.forEach((id, i) => ((agree += Number(back[i] === id)), total++));
    }
    // Measured 0.95-0.98 for this setting (K=32..64), 0.999 on flite speech with K=256.
    assert.ok(agree / total > 0.8, `only ${((100 * agree) / total).toFixed(1)}% of units came back`);
    assert.throws(() => unitsToWav(tk, [3, 99]), /speech token 99 is not a unit id \(3\.\.34\)/);
  });
});

describe('unit statistics', () => {
  it('computes entropy, total variation and speaker dominance', () => {
    assert.equal(entropyBits(Float64Array.of(1, 1, 1, 1)), 2);
    assert.equal(totalVariation(Float64Array.of(1, 0), Float64Array.of(0, 3)), 1);
    // Unit 0: speaker a 3 of 4 (dominated); unit 1: a 1, b 1 (not).
    const r = speakerDominatedShare([Int32Array.of(0, 0, 0, 1), Int32Array.of(0, 1)], ['a', 'b'], 2)!;
    assert.equal(r.share, 4 / 6);
    assert.equal(speakerDominatedShare([Int32Array.of(0)], ['a'], 2), null);
  });
});
