// The discrete speech tokenizer: log-mel frames, mean/variance normalisation, stacking to the unit
// rate, nearest k-means centroid. Its vocabulary shares the text tower's convention: ids 0, 1, 2 are
// <pad>, <boa> (begin of audio, the tower's bos) and <eoa> (end of audio, its eos); unit u is id u + 3.
import { SpeechTokenizerConfig } from '../../config/speech-schema.js';
import { Rng } from '../../util/rng.js';
import { kmeans, nearestScan, squaredNorms, type KmeansResult, type NearestSearch, type SearchFactory, type Vectors } from './kmeans.js';
import { LogMel, frameCount, frameSpec, stackFrames } from './mel.js';
import { sha256Hex } from '../../config/hash.js';

export const SPEECH_SPECIALS = ['<pad>', '<boa>', '<eoa>'] as const;
/** Id of unit 0. */
export const UNIT_OFFSET = SPEECH_SPECIALS.length;
export const SPEECH_TOKENIZER_FORMAT = 'zipper-speech-tokenizer';
export const SPEECH_TOKENIZER_VERSION = 1;

/** Per-mel-bin statistics of the raw log-mel frames. */
export interface NormStats {
  mean: Float32Array;
  std: Float32Array;
}

/** What speech-tokenizer.json holds. */
export interface SpeechTokenizerJson {
  format: typeof SPEECH_TOKENIZER_FORMAT;
  version: number;
  config: SpeechTokenizerConfig;
  specials: string[];
  vocab_size: number;
  /** Over the whole training pool's raw log-mel frames; "global" normalisation and units-to-wav use them. */
  norm: { mean: number[]; std: number[] };
  codebook: { k: number; dim: number; encoding: 'float32-le-base64'; sha256: string; data: string };
  training: TrainingRecord;
}

/** Where the codebook came from (no timings: the file is the same for the same inputs). */
export interface TrainingRecord {
  utterances: number;
  seconds_of_audio: number;
  frames: number;
  vectors: number;
  init_vectors: number;
  /** Mean squared distance to the nearest centroid after k-means++ and after each Lloyd iteration. */
  inertia: number[];
  reseeded: number;
  /** What the training inputs hash to (zipper tokenize's cache key for the codebook), when known. */
  key?: string;
}

/** Smallest spread a bin is divided by: a constant bin (always at the floor) stays finite. */
const MIN_STD = 1e-3;

/**
 * What one utterance of the training pool contributes: per-bin sums over all its frames (for the
 * global statistics) and its sampled stacked vectors, normalised per utterance when the config
 * says so and otherwise raw (global normalisation is applied once the pool's statistics are known).
 */
export interface PoolPart {
  frames: number;
  seconds: number;
  sum: Float64Array;
  sumSq: Float64Array;
  vectors: Float32Array;
}

/** A seed for one utterance's draws: the same id and seed always sample the same vectors. */
export function utteranceSeed(seed: number, id: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Roughly how many stacked vectors `seconds` of audio gives: for sizing the sampling rate. */
export function expectedVectors(cfg: SpeechTokenizerConfig, seconds: number): number {
  const frames = frameCount(Math.round(seconds * cfg.mel.sample_rate), frameSpec(cfg.mel));
  return Math.ceil(frames / cfg.stack);
}

function perBinStats(frames: Float32Array, nMels: number): { sum: Float64Array; sumSq: Float64Array } {
  const sum = new Float64Array(nMels);
  const sumSq = new Float64Array(nMels);
  for (let o = 0; o < frames.length; o += nMels) {
    for (let m = 0; m < nMels; m++) {
      const v = frames[o + m]!;
      sum[m] += v;
      sumSq[m] += v * v;
    }
  }
  return { sum, sumSq };
}

function statsFrom(sum: Float64Array, sumSq: Float64Array, n: number): NormStats {
  const mean = new Float32Array(sum.length);
  const std = new Float32Array(sum.length);
  for (let m = 0; m < sum.length; m++) {
    const mu = sum[m]! / n;
    mean[m] = mu;
    std[m] = Math.max(MIN_STD, Math.sqrt(Math.max(0, sumSq[m]! / n - mu * mu)));
  }
  return { mean, std };
}

function normaliseInPlace(frames: Float32Array, s: NormStats): void {
  const nMels = s.mean.length;
  const inv = s.std.map((v) => 1 / v);
  for (let o = 0; o < frames.length; o += nMels) {
    for (let m = 0; m < nMels; m++) frames[o + m] = (frames[o + m]! - s.mean[m]!) * inv[m]!;
  }
}

/** Features as the codebook sees them, before any global normalisation. */
class FeaturePipeline {
  readonly mel: LogMel;
  constructor(readonly cfg: SpeechTokenizerConfig) {
    this.mel = new LogMel(cfg.mel);
  }

  /** Raw log-mel frames [frames x n_mels]; throws naming `source` on a wrong sample rate. */
  logMel(samples: Float32Array, sampleRate: number, source: string): Float32Array {
    if (sampleRate !== this.cfg.mel.sample_rate) {
      throw new Error(`${source}: sample rate ${sampleRate} Hz, but the speech tokenizer expects ${this.cfg.mel.sample_rate} Hz`);
    }
    return this.mel.compute(samples);
  }

  /** Applies per-utterance CMVN in place when configured. */
  utteranceNormalise(frames: Float32Array): void {
    if (this.cfg.normalise !== 'utterance') return;
    const n = this.cfg.mel.n_mels;
    const { sum, sumSq } = perBinStats(frames, n);
    normaliseInPlace(frames, statsFrom(sum, sumSq, frames.length / n));
  }
}

/**
 * One utterance's share of the training pool: each stacked vector is kept with probability `keep`,
 * drawn from a generator seeded by the utterance id, so the sample does not depend on which worker
 * handled which utterance.
 */
export function poolPart(cfg: SpeechTokenizerConfig, samples: Float32Array, sampleRate: number, id: string, keep: number, seed: number, source = id): PoolPart {
  const pipe = new FeaturePipeline(cfg);
  const frames = pipe.logMel(samples, sampleRate, source);
  const nMels = cfg.mel.n_mels;
  const { sum, sumSq } = perBinStats(frames, nMels);
  pipe.utteranceNormalise(frames);
  const stacked = stackFrames(frames, nMels, cfg.stack);
  const dim = nMels * cfg.stack;
  const rng = new Rng(utteranceSeed(seed, id));
  const kept: number[] = [];
  for (let u = 0; u < stacked.length / dim; u++) if (rng.next() < keep) kept.push(u);
  const vectors = new Float32Array(kept.length * dim);
  kept.forEach((u, r) => vectors.set(stacked.subarray(u * dim, (u + 1) * dim), r * dim));
  return { frames: frames.length / nMels, seconds: samples.length / sampleRate, sum, sumSq, vectors };
}

/** Progress of codebook training, for logs. */
export interface TrainProgress {
  stage: 'init' | 'lloyd';
  iteration: number;
  inertia: number;
}

export interface TrainOptions {
  search?: SearchFactory;
  /** Recorded as training.key. */
  key?: string;
  onProgress?: (p: TrainProgress) => void;
}

export class SpeechTokenizer {
  readonly pad = 0;
  readonly bos = 1;
  readonly eos = 2;
  readonly vocabSize: number;
  /** Codebook size K. */
  readonly k: number;
  /** Length of one stacked vector (n_mels x stack). */
  readonly dim: number;
  private readonly pipe: FeaturePipeline;
  private cNorm: Float64Array | null = null;

  private constructor(
    readonly config: SpeechTokenizerConfig,
    /** [K x dim] centroids in the normalised feature space. */
    readonly codebook: Float32Array,
    readonly norm: NormStats,
    readonly training: TrainingRecord,
  ) {
    this.k = config.kmeans.codebook_size;
    this.dim = config.mel.n_mels * config.stack;
    this.vocabSize = this.k + UNIT_OFFSET;
    this.pipe = new FeaturePipeline(config);
  }

  /**
   * Learns the codebook from the training pool's parts (in a fixed order: the result depends on it).
   * Vectors beyond kmeans.train_vectors are dropped at random (seeded).
   */
  static async train(parts: readonly PoolPart[], cfgIn: SpeechTokenizerConfig, opts: TrainOptions = {}): Promise<SpeechTokenizer> {
    const cfg = SpeechTokenizerConfig.parse(cfgIn);
    const nMels = cfg.mel.n_mels;
    const dim = nMels * cfg.stack;
    const sum = new Float64Array(nMels);
    const sumSq = new Float64Array(nMels);
    let frames = 0;
    let seconds = 0;
    let total = 0;
    for (const p of parts) {
      for (let m = 0; m < nMels; m++) {
        sum[m] += p.sum[m]!;
        sumSq[m] += p.sumSq[m]!;
      }
      frames += p.frames;
      seconds += p.seconds;
      total += p.vectors.length / dim;
    }
    if (frames === 0) throw new Error('cannot train a speech tokenizer on no audio');
    const norm = statsFrom(sum, sumSq, frames);
    const k = cfg.kmeans.codebook_size;
    if (total < k) throw new Error(`speech tokenizer: the training sample has ${total} vectors, fewer than codebook_size ${k} (more audio, or a smaller codebook)`);

    const rng = new Rng(cfg.kmeans.seed);
    const n = Math.min(total, cfg.kmeans.train_vectors);
    // Keep a seeded random subset, in pool order, when the sample came out larger than asked.
    const keep = n === total ? null : new Uint8Array(total);
    if (keep) for (const i of rng.permutation(total).subarray(0, n)) keep[i] = 1;
    const data = new Float32Array(n * dim);
    let row = 0;
    let seen = 0;
    for (const p of parts) {
      for (let o = 0; o < p.vectors.length; o += dim, seen++) {
        if (keep && !keep[seen]) continue;
        data.set(p.vectors.subarray(o, o + dim), row++ * dim);
      }
    }
    if (cfg.normalise === 'global') normaliseInPlace(data, norm);

    const result: KmeansResult = await kmeans({ data, n, dim }, {
      k,
      iterations: cfg.kmeans.iterations,
      initVectors: cfg.kmeans.init_vectors,
      seed: rng.nextU32(),
      search: opts.search,
      onIteration: (iteration, inertia) => opts.onProgress?.({ stage: iteration === 0 ? 'init' : 'lloyd', iteration, inertia }),
    });
    const training: TrainingRecord = {
      utterances: parts.length,
      seconds_of_audio: Number(seconds.toFixed(3)),
      frames,
      vectors: n,
      init_vectors: Math.min(n, Math.max(k, cfg.kmeans.init_vectors)),
      inertia: result.history.map((v) => Number(v.toPrecision(6))),
      reseeded: result.reseeded,
      ...(opts.key === undefined ? {} : { key: opts.key }),
    };
    return new SpeechTokenizer(cfg, result.centroids, norm, training);
  }

  /**
   * Trains on in-memory signals (tests, small experiments): every utterance is sampled at the rate
   * that gives about kmeans.train_vectors vectors in all.
   */
  static async trainOnSignals(signals: readonly Float32Array[], sampleRate: number, cfgIn: SpeechTokenizerConfig, opts: TrainOptions = {}): Promise<SpeechTokenizer> {
    const cfg = SpeechTokenizerConfig.parse(cfgIn);
    const expected = signals.reduce((a, s) => a + expectedVectors(cfg, s.length / sampleRate), 0);
    const keep = Math.min(1, cfg.kmeans.train_vectors / Math.max(1, expected));
    const parts = signals.map((s, i) => poolPart(cfg, s, sampleRate, `signal-${i}`, keep, cfg.kmeans.seed));
    return SpeechTokenizer.train(parts, cfg, opts);
  }

  /** Normalised stacked vectors of a signal: what the codebook is matched against. */
  features(samples: Float32Array, sampleRate: number, source = '<audio>'): Vectors {
    const frames = this.pipe.logMel(samples, sampleRate, source);
    if (this.config.normalise === 'global') normaliseInPlace(frames, this.norm);
    else this.pipe.utteranceNormalise(frames);
    const data = stackFrames(frames, this.config.mel.n_mels, this.config.stack);
    return { data, n: data.length / this.dim, dim: this.dim };
  }

  /** Unit ids (offset included, no <boa>/<eoa>) of a signal, by the reference search. */
  encodeAudio(samples: Float32Array, sampleRate: number, source = '<audio>'): number[] {
    const x = this.features(samples, sampleRate, source);
    const units = new Int32Array(x.n);
    this.cNorm ??= squaredNorms(this.codebook, this.k, this.dim);
    nearestScan(x.data, 0, x.n, this.dim, this.codebook, this.cNorm, this.k, units);
    return Array.from(units, (u) => u + UNIT_OFFSET);
  }

  /** Unit ids of feature vectors through a (faster) search; identical to the reference's. */
  static async encodeVectors(x: Vectors, search: NearestSearch): Promise<number[]> {
    const units = new Int32Array(x.n);
    await search.nearest(x, units);
    return Array.from(units, (u) => u + UNIT_OFFSET);
  }

  /** The centroid of an id (a unit id, offset included), as normalised stacked features. */
  centroid(id: number): Float32Array {
    const u = id - UNIT_OFFSET;
    if (!Number.isInteger(u) || u < 0 || u >= this.k) throw new Error(`speech token ${id} is not a unit id (${UNIT_OFFSET}..${this.vocabSize - 1})`);
    return this.codebook.subarray(u * this.dim, (u + 1) * this.dim);
  }

  toJSON(): string {
    const bytes = Buffer.from(this.codebook.buffer, this.codebook.byteOffset, this.codebook.byteLength);
    const json: SpeechTokenizerJson = {
      format: SPEECH_TOKENIZER_FORMAT,
      version: SPEECH_TOKENIZER_VERSION,
      config: this.config,
      specials: [...SPEECH_SPECIALS],
      vocab_size: this.vocabSize,
      norm: { mean: Array.from(this.norm.mean), std: Array.from(this.norm.std) },
      codebook: { k: this.k, dim: this.dim, encoding: 'float32-le-base64', sha256: sha256Hex(bytes), data: bytes.toString('base64') },
      training: this.training,
    };
    return JSON.stringify(json);
  }

  /** Loads what toJSON() wrote; `source` (a file path) names the culprit in every error. */
  static fromJSON(text: string, source = '<string>'): SpeechTokenizer {
    const bad = (why: string) => new Error(`speech tokenizer ${source}: ${why}`);
    let j: SpeechTokenizerJson;
    try {
      j = JSON.parse(text) as SpeechTokenizerJson;
    } catch (e) {
      throw bad(`not valid JSON (${(e as Error).message})`);
    }
    if (j?.format !== SPEECH_TOKENIZER_FORMAT) throw bad(`not a speech tokenizer (format is ${JSON.stringify(j?.format)}, expected "${SPEECH_TOKENIZER_FORMAT}")`);
    if (j.version !== SPEECH_TOKENIZER_VERSION) throw bad(`format version ${j.version}, this toolkit reads version ${SPEECH_TOKENIZER_VERSION}`);
    const parsed = SpeechTokenizerConfig.safeParse(j.config);
    if (!parsed.success) throw bad(`invalid config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const cfg = parsed.data;
    const k = cfg.kmeans.codebook_size;
    const dim = cfg.mel.n_mels * cfg.stack;
    if (j.codebook?.k !== k || j.codebook?.dim !== dim) throw bad(`codebook is ${j.codebook?.k} x ${j.codebook?.dim}, its config says ${k} x ${dim}`);
    if (j.codebook.encoding !== 'float32-le-base64' || typeof j.codebook.data !== 'string') throw bad('codebook data missing or in an unknown encoding');
    const bytes = Buffer.from(j.codebook.data, 'base64');
    if (bytes.length !== k * dim * 4) throw bad(`codebook has ${bytes.length} bytes, expected ${k * dim * 4} (truncated?)`);
    if (sha256Hex(bytes) !== j.codebook.sha256) throw bad('codebook checksum mismatch (the file is corrupt)');
    const codebook = new Float32Array(k * dim);
    new Uint8Array(codebook.buffer).set(bytes);
    if (!codebook.every(Number.isFinite)) throw bad('codebook holds non-finite values');
    const vec = (v: unknown, what: string) => {
      if (!Array.isArray(v) || v.length !== cfg.mel.n_mels || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw bad(`norm.${what} must be ${cfg.mel.n_mels} finite numbers`);
      }
      return Float32Array.from(v as number[]);
    };
    const norm = { mean: vec(j.norm?.mean, 'mean'), std: vec(j.norm?.std, 'std') };
    if (j.vocab_size !== k + UNIT_OFFSET) throw bad(`vocab_size ${j.vocab_size} does not match codebook_size ${k} + ${UNIT_OFFSET}`);
    return new SpeechTokenizer(cfg, codebook, norm, j.training);
  }
}

