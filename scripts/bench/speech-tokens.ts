/**
 * Speech tokens, for `npm run bench`: features + tokenization speed (x real time, one core; the
 * issue's target is 300x), the nearest-centroid search on each engine (a JS loop, tfjs-wasm's plain
 * 2-D matMul, onnxruntime; the rounds alternate), whether worker threads pay, and codebook training
 * time.
 *
 * Audio: flite speech (4 voices) from the toolkit's own synthesiser, held in memory for the one-core
 * figures and written as FLAC for the worker figures (which then include decoding, as `zipper
 * tokenize` does). The codebook is learned on that speech's vectors repeated with a little jitter up
 * to `trainVectors` (150k by default, SCALE.md's size): matrix products cost the same on any values,
 * so the time is what the default corpus's codebook costs.
 *
 *   node dist/scripts/bench/speech-tokens.js [--quick]   (or import speechTokenBench)
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpeechTokenizerConfig } from '../../src/config/speech-schema.js';
import { fromInt16, writeFlac } from '../../src/data/audio.js';
import { fliteSpeak, FLITE_RATE, type FliteVoice } from '../../src/data/synth/flite.js';
import { synthSentences } from '../../src/data/synth/sentences.js';
import { initBackend, tf } from '../../src/engine/backends.js';
import { nearestScan, squaredNorms, type Vectors } from '../../src/tokenizers/speech/kmeans.js';
import { ortSearch } from '../../src/tokenizers/speech/nearest.js';
import { SpeechPool } from '../../src/tokenizers/speech/pool.js';
import { SpeechTokenizer, poolPart, type PoolPart } from '../../src/tokenizers/speech/tokenizer.js';
import { Rng } from '../../src/util/rng.js';
import { median } from './common.js';

export interface SpeechTokenBenchOptions {
  /** Seconds of speech to synthesise (default 120; quick 40). */
  seconds?: number;
  /** Codebook size (default 1024, the default config's). */
  k?: number;
  /** Vectors the codebook is learned on (default 150,000; quick 20,000). */
  trainVectors?: number;
  /** Seconds of audio (the speech repeated) for the worker figures (default 1200; quick 300). */
  workerSeconds?: number;
  /** Alternating rounds of the search comparison (default 3; quick 1). */
  rounds?: number;
  quick?: boolean;
  log?: (line: string) => void;
}

export interface SearchFigure {
  method: 'js' | 'tfjs-wasm' | 'onnxruntime';
  gflops: number;
  /** Seconds of audio whose units it finds per second (25 units a second of audio). */
  x_real_time: number;
}

export interface SpeechTokenBenchResult {
  audio_seconds: number;
  k: number;
  /** Log-mel, CMVN and stacking, one core. */
  features_x_real_time: number;
  search: SearchFigure[];
  /** Features + onnxruntime units, one core, audio in memory: the issue's figure (target 300). */
  tokens_x_real_time: number;
  target_x_real_time: number;
  /** `zipper tokenize`'s path (FLAC decoding, features, units) on 1 and 2 worker threads. */
  workers: { workers: number; x_real_time: number }[];
  codebook: { seconds: number; vectors: number; k: number; iterations: number; workers: number };
  /** Rows whose best float32 scores were too close to call (settled by the reference formula), and those that needed the full reference scan. */
  rechecked_share: number;
  scanned_share: number;
}

const VOICES: FliteVoice[] = ['slt', 'rms', 'awb', 'kal16'];

/** About `seconds` of flite speech, one array per sentence. */
function speech(seconds: number): Float32Array[] {
  const { sentences } = synthSentences(8, 20);
  const out: Float32Array[] = [];
  let total = 0;
  for (let v = 0, s = 0; total < seconds; v++) {
    const batch = sentences.slice(s, s + 8).map((x) => x.spoken);
    s += 8;
    for (const pcm of fliteSpeak(batch, { voice: VOICES[v % VOICES.length]!, stretch: 1, f0Shift: 1 })) {
      out.push(fromInt16(pcm));
      total += pcm.length / FLITE_RATE;
    }
  }
  return out;
}

function time<T>(fn: () => T): { seconds: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

/** The training sample: the speech's vectors, repeated with 1% jitter up to n. */
function trainingParts(parts: PoolPart[], n: number, dim: number): PoolPart[] {
  const rng = new Rng(3);
  const out = [...parts];
  let have = parts.reduce((a, p) => a + p.vectors.length / dim, 0);
  for (let i = 0; have < n; i++) {
    const p = parts[i % parts.length]!;
    out.push({ ...p, vectors: p.vectors.map((v) => v + 0.01 * rng.normal()) });
    have += p.vectors.length / dim;
  }
  return out;
}

/** The three searches over the same vectors, alternating, each the median of its rounds. */
async function compareSearches(tk: SpeechTokenizer, x: Vectors, rounds: number, log: (s: string) => void): Promise<SearchFigure[]> {
  const { k, dim, codebook } = tk;
  const flops = 2 * x.n * dim * k;
  const seconds = x.n / 25;
  const units = new Int32Array(x.n);
  const cNorm = squaredNorms(codebook, k, dim);
  // tfjs-wasm's fast path is a plain 2-D product: the codebook goes in transposed, scaled by -2.
  await initBackend('wasm');
  const wT = new Float32Array(dim * k);
  for (let j = 0; j < k; j++) for (let d = 0; d < dim; d++) wT[d * k + j] = -2 * codebook[j * dim + d]!;
  const w = tf.tensor2d(wT, [dim, k]);
  const ort = await ortSearch(codebook, k, dim);
  const methods: Record<SearchFigure['method'], () => Promise<void>> = {
    js: async () => nearestScan(x.data, 0, x.n, dim, codebook, cNorm, k, units),
    'tfjs-wasm': async () => {
      for (let r0 = 0; r0 < x.n; r0 += 512) {
        const rows = Math.min(512, x.n - r0);
        const s = tf.tidy(() => tf.matMul(tf.tensor2d(x.data.subarray(r0 * dim, (r0 + rows) * dim), [rows, dim]), w));
        const p = s.dataSync();
        s.dispose();
        for (let r = 0; r < rows; r++) {
          let best = Infinity;
          let unit = 0;
          for (let j = 0; j < k; j++) {
            const v = cNorm[j]! + p[r * k + j]!;
            if (v < best) {
              best = v;
              unit = j;
            }
          }
          units[r0 + r] = unit;
        }
      }
    },
    onnxruntime: () => ort.nearest(x, units),
  };
  const times: Record<string, number[]> = { js: [], 'tfjs-wasm': [], onnxruntime: [] };
  for (const fn of Object.values(methods)) await fn(); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(methods)) times[name]!.push((await timeAsync(fn)).seconds);
    log(`  speech search round ${r + 1}/${rounds}: ${Object.entries(times).map(([n, t]) => `${n} ${(flops / t.at(-1)! / 1e9).toFixed(1)}`).join(', ')} GFLOP/s`);
  }
  w.dispose();
  ort.dispose();
  return (Object.keys(methods) as SearchFigure['method'][]).map((method) => {
    const t = median(times[method]!);
    return { method, gflops: flops / t / 1e9, x_real_time: seconds / t };
  });
}

export async function speechTokenBench(o: SpeechTokenBenchOptions = {}): Promise<SpeechTokenBenchResult> {
  const quick = o.quick ?? false;
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const k = o.k ?? 1024;
  const trainVectors = o.trainVectors ?? (quick ? 20000 : 150000);
  const rounds = o.rounds ?? (quick ? 1 : 3);
  const workerSeconds = o.workerSeconds ?? (quick ? 300 : 1200);
  const cfg = SpeechTokenizerConfig.parse({ kmeans: { codebook_size: k, train_vectors: trainVectors } });
  const rate = cfg.mel.sample_rate;

  const audio = speech(o.seconds ?? (quick ? 40 : 120));
  const audioSeconds = audio.reduce((a, x) => a + x.length / rate, 0);
  log(`  speech tokens: ${audioSeconds.toFixed(0)} s of flite speech; codebook K=${k} on ${trainVectors} vectors`);

  // Codebook: k-means++ and Lloyd on two workers, as zipper tokenize learns it.
  const parts = trainingParts(audio.map((x, i) => poolPart(cfg, x, rate, `b${i}`, 1, 1)), trainVectors, cfg.mel.n_mels * cfg.stack);
  const pool = SpeechPool.start(2);
  let tk: SpeechTokenizer;
  let codebookSeconds: number;
  try {
    const t = await timeAsync(() => SpeechTokenizer.train(parts, cfg, { search: pool.search() }));
    tk = t.value;
    codebookSeconds = t.seconds;
  } finally {
    pool.close();
  }
  log(`  speech codebook: ${codebookSeconds.toFixed(1)} s`);

  // One core: features, then the searches on the features.
  const feats = time(() => audio.map((x) => tk.features(x, rate)));
  const all: Vectors = { data: new Float32Array(feats.value.reduce((n, f) => n + f.data.length, 0)), n: 0, dim: tk.dim };
  for (const f of feats.value) {
    all.data.set(f.data, all.n * tk.dim);
    all.n += f.n;
  }
  const search = await compareSearches(tk, all, rounds, log);
  const ortFigure = search.find((s) => s.method === 'onnxruntime')!;
  const featuresRate = audioSeconds / feats.seconds;
  const stats = { rows: 0, rechecked: 0, scanned: 0 };
  const s = await ortSearch(tk.codebook, tk.k, tk.dim, 1, stats);
  await s.nearest(all, new Int32Array(all.n));
  s.dispose();

  // zipper tokenize's path: FLAC files through the worker threads.
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'zipper-bench-speech-'));
  const workers: SpeechTokenBenchResult['workers'] = [];
  try {
    // Enough files for dozens of batches, so that two workers can share them evenly.
    const copies = Math.ceil(workerSeconds / audioSeconds);
    const items = audio.map((x, i) => {
      const file = path.join(dir, `${i}.flac`);
      writeFlac(file, x, rate);
      return { id: String(i), file, seconds: x.length / rate };
    });
    const all = Array.from({ length: copies }, (_, c) => items.map((it) => ({ ...it, id: `${c}-${it.id}` }))).flat();
    const json = tk.toJSON();
    for (const n of [1, 2]) {
      const p = SpeechPool.start(n);
      try {
        await p.loadTokenizer(json, 'bench');
        await p.encode(items.slice(0, 2 * n), false); // warm-up: JIT and sessions
        const t = await timeAsync(() => p.encode(all, false));
        workers.push({ workers: n, x_real_time: (copies * audioSeconds) / t.seconds });
      } finally {
        p.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  return {
    audio_seconds: audioSeconds,
    k,
    features_x_real_time: featuresRate,
    search,
    tokens_x_real_time: 1 / (1 / featuresRate + 1 / ortFigure.x_real_time),
    target_x_real_time: 300,
    workers,
    codebook: { seconds: codebookSeconds, vectors: tk.training.vectors, k, iterations: cfg.kmeans.iterations, workers: 2 },
    rechecked_share: stats.rechecked / Math.max(1, stats.rows),
    scanned_share: stats.scanned / Math.max(1, stats.rows),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const r = await speechTokenBench({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(r, null, 2));
}
