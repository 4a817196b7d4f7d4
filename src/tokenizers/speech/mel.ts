// Log-mel features: Hann-windowed frames, a real FFT (fft.js), power spectrum, Slaney-style mel
// filters (librosa's and Whisper's default), natural log with a floor relative to the utterance's
// loudest value. Frames are "snipped" at the edges like Kaldi's: frame t covers samples
// [t * hop, t * hop + win); a signal shorter than one window still gives one (zero-padded) frame.
import FFT from 'fft.js';
import type { MelConfig } from '../../config/speech-schema.js';

/** Frame geometry in samples. */
export interface FrameSpec {
  win: number;
  hop: number;
  nFft: number;
  /** Spectrum bins 0..nFft/2. */
  nBins: number;
}

export function frameSpec(cfg: MelConfig): FrameSpec {
  const win = Math.round((cfg.win_ms / 1000) * cfg.sample_rate);
  const hop = Math.round((cfg.hop_ms / 1000) * cfg.sample_rate);
  return { win, hop, nFft: cfg.n_fft, nBins: cfg.n_fft / 2 + 1 };
}

/** Frames a signal of n samples gives (at least one). */
export function frameCount(n: number, spec: FrameSpec): number {
  return n <= spec.win ? 1 : 1 + Math.floor((n - spec.win) / spec.hop);
}

// Slaney's mel scale: linear below 1 kHz, logarithmic above.
const F_SP = 200 / 3;
const MIN_LOG_HZ = 1000;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP;
const LOG_STEP = Math.log(6.4) / 27;

export function hzToMel(hz: number): number {
  return hz < MIN_LOG_HZ ? hz / F_SP : MIN_LOG_MEL + Math.log(hz / MIN_LOG_HZ) / LOG_STEP;
}

export function melToHz(mel: number): number {
  return mel < MIN_LOG_MEL ? mel * F_SP : MIN_LOG_HZ * Math.exp(LOG_STEP * (mel - MIN_LOG_MEL));
}

/** Centre frequency (Hz) of each mel filter. */
export function melCentres(cfg: MelConfig): number[] {
  const lo = hzToMel(cfg.fmin);
  const hi = hzToMel(cfg.fmax ?? cfg.sample_rate / 2);
  return Array.from({ length: cfg.n_mels }, (_, m) => melToHz(lo + ((m + 1) * (hi - lo)) / (cfg.n_mels + 1)));
}

/**
 * Triangular filters as a dense [n_mels x nBins] matrix, each scaled to unit area in Hz
 * (Slaney normalisation), so a filter's output is the mean power density under it.
 */
export function melFilterbank(cfg: MelConfig): Float32Array {
  const { nFft, nBins } = frameSpec(cfg);
  const lo = hzToMel(cfg.fmin);
  const hi = hzToMel(cfg.fmax ?? cfg.sample_rate / 2);
  const edges = Array.from({ length: cfg.n_mels + 2 }, (_, i) => melToHz(lo + (i * (hi - lo)) / (cfg.n_mels + 1)));
  const fb = new Float32Array(cfg.n_mels * nBins);
  for (let m = 0; m < cfg.n_mels; m++) {
    const [left, centre, right] = [edges[m]!, edges[m + 1]!, edges[m + 2]!];
    const scale = 2 / (right - left);
    for (let b = 0; b < nBins; b++) {
      const hz = (b * cfg.sample_rate) / nFft;
      const w = Math.max(0, Math.min((hz - left) / (centre - left), (right - hz) / (right - centre)));
      fb[m * nBins + b] = w * scale;
    }
  }
  return fb;
}

/** The periodic Hann window (what torch.hann_window and librosa use for spectra). */
export function hannWindow(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
}

/**
 * Log-mel extractor for one configuration. Reusable and not thread-safe: it owns its FFT buffers.
 */
export class LogMel {
  readonly spec: FrameSpec;
  readonly nMels: number;
  private readonly fft: FFT;
  private readonly window: Float64Array;
  // The filterbank is mostly zeros: each filter is stored as its non-zero span only, all spans
  // in one flat array (filter m's weights start at spanAt[m] and apply from bin spanFrom[m]).
  private readonly spanFrom: Int32Array;
  private readonly spanAt: Int32Array;
  private readonly weights: Float64Array;
  private readonly frame: Float64Array;
  private readonly spectrum: Float64Array;
  private readonly power: Float64Array;
  private readonly floorNats: number;

  constructor(readonly cfg: MelConfig) {
    this.spec = frameSpec(cfg);
    this.nMels = cfg.n_mels;
    this.fft = new FFT(this.spec.nFft);
    this.window = Float64Array.from(hannWindow(this.spec.win));
    const fb = melFilterbank(cfg);
    const nb = this.spec.nBins;
    this.spanFrom = new Int32Array(cfg.n_mels);
    this.spanAt = new Int32Array(cfg.n_mels + 1);
    const flat: number[] = [];
    for (let m = 0; m < cfg.n_mels; m++) {
      const row = fb.subarray(m * nb, (m + 1) * nb);
      let from = row.findIndex((w) => w > 0);
      if (from < 0) from = 0;
      let to = nb;
      while (to > from && row[to - 1] === 0) to--;
      this.spanFrom[m] = from;
      this.spanAt[m] = flat.length;
      for (let b = from; b < to; b++) flat.push(row[b]!);
    }
    this.spanAt[cfg.n_mels] = flat.length;
    this.weights = Float64Array.from(flat);
    this.frame = new Float64Array(this.spec.nFft);
    this.spectrum = new Float64Array(2 * this.spec.nFft);
    this.power = new Float64Array(nb);
    this.floorNats = (cfg.floor_db / 10) * Math.LN10;
  }

  /** Log-mel frames of the signal, row-major [frames x n_mels]. */
  compute(samples: Float32Array): Float32Array {
    const { win, hop, nBins } = this.spec;
    const nMels = this.nMels;
    const n = frameCount(samples.length, this.spec);
    const out = new Float32Array(n * nMels);
    const { frame, spectrum, power, window, spanFrom, spanAt, weights } = this;
    let peak = -Infinity;
    for (let t = 0; t < n; t++) {
      const start = t * hop;
      const avail = Math.min(win, samples.length - start);
      for (let i = 0; i < avail; i++) frame[i] = samples[start + i]! * window[i]!;
      if (avail < win) frame.fill(0, avail);
      this.fft.realTransform(spectrum, frame);
      for (let b = 0; b < nBins; b++) {
        const re = spectrum[2 * b]!;
        const im = spectrum[2 * b + 1]!;
        power[b] = re * re + im * im;
      }
      const row = t * nMels;
      for (let m = 0; m < nMels; m++) {
        let e = 0;
        for (let j = spanAt[m]!, b = spanFrom[m]!, end = spanAt[m + 1]!; j < end; j++, b++) e += weights[j]! * power[b]!;
        // 1e-20 keeps the log finite on digital silence; the relative floor below decides the rest.
        const v = Math.log(e + 1e-20);
        out[row + m] = v;
        if (v > peak) peak = v;
      }
    }
    const floor = peak - this.floorNats;
    for (let i = 0; i < out.length; i++) if (out[i]! < floor) out[i] = floor;
    return out;
  }
}

/**
 * Stacks `stack` consecutive frames of `dim` values into one vector; the last vector repeats the
 * final frame when the frame count is not a multiple of `stack`, so every frame is covered.
 */
export function stackFrames(frames: Float32Array, dim: number, stack: number): Float32Array {
  const n = frames.length / dim;
  const units = Math.ceil(n / stack);
  const out = new Float32Array(units * dim * stack);
  for (let u = 0; u < units; u++) {
    for (let s = 0; s < stack; s++) {
      const t = Math.min(u * stack + s, n - 1);
      out.set(frames.subarray(t * dim, (t + 1) * dim), (u * stack + s) * dim);
    }
  }
  return out;
}
