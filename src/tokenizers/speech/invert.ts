// Units back to audio, so a person can hear a token sequence: each unit's centroid is unstacked into
// its log-mel frames and de-normalised, mel power is mapped to a linear power spectrum by the mel
// filterbank's (regularised) pseudo-inverse, and the phase is recovered by fast Griffin-Lim
// (Perraudin, Balazs & Sondergaard 2013: Griffin-Lim with momentum). The frames line up with the
// analysis frames, so re-tokenizing the result gives back mostly the same units.
import FFT from 'fft.js';
import { Rng } from '../../util/rng.js';
import { frameSpec, hannWindow, melFilterbank, type FrameSpec } from './mel.js';
import { UNIT_OFFSET, type SpeechTokenizer } from './tokenizer.js';

export interface UnitsToWavOptions {
  /** Griffin-Lim iterations (default 32). */
  iterations?: number;
  /** Fast Griffin-Lim momentum; 0 gives the original algorithm (default 0.99). */
  momentum?: number;
  /** Seed of the initial random phase. */
  seed?: number;
}

/**
 * Audio at the tokenizer's sample rate for a sequence of speech token ids. <pad>, <boa> and <eoa>
 * are skipped (a generated sequence may hold them); any other id outside the vocabulary throws.
 */
export function unitsToWav(tk: SpeechTokenizer, ids: readonly number[], opts: UnitsToWavOptions = {}): Float32Array {
  const cfg = tk.config;
  const nMels = cfg.mel.n_mels;
  const units = ids.filter((id) => id >= UNIT_OFFSET);
  const frames = new Float32Array(units.length * cfg.stack * nMels);
  units.forEach((id, u) => frames.set(tk.centroid(id), u * cfg.stack * nMels));
  // Back to raw log-mel. Under per-utterance normalisation the utterance's own statistics are gone:
  // the pool's are the best guess.
  if (cfg.normalise !== 'none') {
    for (let i = 0; i < frames.length; i++) frames[i] = frames[i]! * tk.norm.std[i % nMels]! + tk.norm.mean[i % nMels]!;
  }
  const spec = frameSpec(cfg.mel);
  const magnitude = melToMagnitude(frames, nMels, melFilterbank(cfg.mel), spec.nBins);
  return griffinLim(magnitude, spec, opts);
}

/**
 * Linear magnitude spectra [frames x nBins] from log-mel frames: power = M^T (M M^T + lambda I)^-1 mel,
 * negative values clipped to zero. lambda is 1e-6 of the mean diagonal of M M^T: enough to keep the
 * solve stable, far too small to blur.
 */
export function melToMagnitude(logMel: Float32Array, nMels: number, fb: Float32Array, nBins: number): Float32Array {
  const G = new Float64Array(nMels * nMels);
  for (let a = 0; a < nMels; a++) {
    for (let b = a; b < nMels; b++) {
      let s = 0;
      for (let j = 0; j < nBins; j++) s += fb[a * nBins + j]! * fb[b * nBins + j]!;
      G[a * nMels + b] = G[b * nMels + a] = s;
    }
  }
  let trace = 0;
  for (let a = 0; a < nMels; a++) trace += G[a * nMels + a]!;
  for (let a = 0; a < nMels; a++) G[a * nMels + a] += (1e-6 * trace) / nMels;
  const L = cholesky(G, nMels);
  const T = logMel.length / nMels;
  const out = new Float32Array(T * nBins);
  const y = new Float64Array(nMels);
  for (let t = 0; t < T; t++) {
    for (let m = 0; m < nMels; m++) y[m] = Math.exp(logMel[t * nMels + m]!);
    choleskySolve(L, nMels, y);
    for (let j = 0; j < nBins; j++) {
      let p = 0;
      for (let m = 0; m < nMels; m++) p += fb[m * nBins + j]! * y[m]!;
      out[t * nBins + j] = Math.sqrt(Math.max(0, p));
    }
  }
  return out;
}

/** Lower-triangular L with L L^T = A (A symmetric positive definite, n x n, row-major). */
function cholesky(A: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j]!;
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error('mel filterbank Gram matrix is not positive definite');
        L[i * n + i] = Math.sqrt(s);
      } else {
        L[i * n + j] = s / L[j * n + j]!;
      }
    }
  }
  return L;
}

/** Solves L L^T x = b in place. */
function choleskySolve(L: Float64Array, n: number, b: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[i * n + k]! * b[k]!;
    b[i] = s / L[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * b[k]!;
    b[i] = s / L[i * n + i]!;
  }
}

/** Smallest window sum the inverse divides by (the interior's is about 0.94 for Hann 400 / hop 160). */
const WSUM_FLOOR = 0.1;

/** Short-time Fourier transform pieces sharing one FFT and window. */
class Stft {
  private readonly fft: FFT;
  private readonly window: Float32Array;
  private readonly buf: Float64Array;
  private readonly cplx: Float64Array;
  private readonly time: Float64Array;
  /** Overlap-added squared window, for the inverse's normalisation. */
  private wsum: Float64Array | null = null;

  constructor(private readonly spec: FrameSpec) {
    this.fft = new FFT(spec.nFft);
    this.window = hannWindow(spec.win);
    this.buf = new Float64Array(spec.nFft);
    this.cplx = new Float64Array(2 * spec.nFft);
    this.time = new Float64Array(2 * spec.nFft);
  }

  /** Complex spectra [frames x nBins x 2] of a signal with `frames` analysis frames. */
  forward(x: Float32Array, frames: number, out: Float64Array): void {
    const { win, hop, nBins } = this.spec;
    for (let t = 0; t < frames; t++) {
      for (let i = 0; i < win; i++) this.buf[i] = x[t * hop + i]! * this.window[i]!;
      this.buf.fill(0, win);
      this.fft.realTransform(this.cplx, this.buf);
      out.set(this.cplx.subarray(0, 2 * nBins), t * 2 * nBins);
    }
  }

  /** Windowed overlap-add inverse (least-squares ISTFT) of spectra [frames x nBins x 2]. */
  inverse(spectra: Float64Array, frames: number, out: Float32Array): void {
    const { win, hop, nFft, nBins } = this.spec;
    if (!this.wsum || this.wsum.length !== out.length) {
      this.wsum = new Float64Array(out.length);
      for (let t = 0; t < frames; t++) for (let i = 0; i < win; i++) this.wsum[t * hop + i] += this.window[i]! ** 2;
    }
    const acc = new Float64Array(out.length);
    for (let t = 0; t < frames; t++) {
      const o = t * 2 * nBins;
      // Hermitian completion of the half spectrum.
      for (let b = 0; b < nBins; b++) {
        this.cplx[2 * b] = spectra[o + 2 * b]!;
        this.cplx[2 * b + 1] = spectra[o + 2 * b + 1]!;
      }
      for (let b = nBins; b < nFft; b++) {
        this.cplx[2 * b] = spectra[o + 2 * (nFft - b)]!;
        this.cplx[2 * b + 1] = -spectra[o + 2 * (nFft - b) + 1]!;
      }
      this.fft.inverseTransform(this.time, this.cplx);
      for (let i = 0; i < win; i++) acc[t * hop + i] += this.time[2 * i]! * this.window[i]!;
    }
    // At the signal's two ends the window sum falls to zero; dividing by it there would blow the
    // inconsistencies of a not yet converged spectrogram up into clicks, so it is floored.
    for (let i = 0; i < out.length; i++) out[i] = acc[i]! / Math.max(this.wsum[i]!, WSUM_FLOOR);
  }
}

/** A signal whose STFT magnitude approximates `magnitude` [frames x nBins]. */
export function griffinLim(magnitude: Float32Array, spec: FrameSpec, opts: UnitsToWavOptions = {}): Float32Array {
  const iterations = opts.iterations ?? 32;
  const momentum = opts.momentum ?? 0.99;
  const { hop, win, nBins } = spec;
  const frames = magnitude.length / nBins;
  if (frames === 0) return new Float32Array(0);
  const x = new Float32Array((frames - 1) * hop + win);
  const stft = new Stft(spec);
  const rng = new Rng(opts.seed ?? 0);
  // Current estimate C (magnitude with the current phase), the projection P, the previous P.
  const C = new Float64Array(frames * nBins * 2);
  for (let i = 0; i < frames * nBins; i++) {
    const phi = 2 * Math.PI * rng.next();
    C[2 * i] = magnitude[i]! * Math.cos(phi);
    C[2 * i + 1] = magnitude[i]! * Math.sin(phi);
  }
  const P = new Float64Array(C.length);
  const prev = Float64Array.from(C);
  for (let it = 0; it < iterations; it++) {
    stft.inverse(C, frames, x);
    stft.forward(x, frames, P);
    for (let i = 0; i < frames * nBins; i++) {
      const re = P[2 * i]!;
      const im = P[2 * i + 1]!;
      const norm = Math.hypot(re, im);
      // The projection onto spectra with the target magnitude: keep the phase, set the magnitude.
      const s = norm > 1e-12 ? magnitude[i]! / norm : 0;
      const pr = s > 0 ? re * s : magnitude[i]!;
      const pi = s > 0 ? im * s : 0;
      C[2 * i] = pr + momentum * (pr - prev[2 * i]!);
      C[2 * i + 1] = pi + momentum * (pi - prev[2 * i + 1]!);
      prev[2 * i] = pr;
      prev[2 * i + 1] = pi;
    }
  }
  // The last projection (not the extrapolated estimate) is what we hear.
  stft.inverse(prev, frames, x);
  let peak = 0;
  for (const v of x) peak = Math.max(peak, Math.abs(v));
  if (peak > 0.99) for (let i = 0; i < x.length; i++) x[i] = (x[i]! * 0.99) / peak;
  return x;
}
