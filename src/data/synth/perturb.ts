// What happens to flite's samples before they are written: speed changes, background noise, dither.
//
// Noise (see SCALE.md): flite writes digital silence, and log-mel units fitted on it treat any noise
// as out of vocabulary: even 30 dB white noise moved the unit histogram of clean sentences far from
// the training pool's. So (1) every utterance of every split gets a faint dither (-70 dBFS by
// default), so no split has digital silence; (2) a share of the training utterances (30%) get white
// noise at a random 15-35 dB SNR, so the codebook is learned on some noisy frames; (3) dev-other /
// test-other get white noise at 20-30 dB on every utterance, inside the training range, not the
// 10-20 dB that made the prototype's "other" set unusable.
import { resample } from '../audio.js';
import type { Rng } from '../../util/rng.js';
import { FLITE_RATE } from './flite.js';

/**
 * Plays `samples` `factor` times faster (tempo and pitch together, as sox's "speed" and Kaldi's
 * speed perturbation do): treats them as recorded at rate*factor and resamples back to rate.
 */
export function changeSpeed(samples: Float32Array, factor: number, rate = FLITE_RATE): Float32Array {
  return factor === 1 ? samples : resample(samples, Math.round(rate * factor), rate);
}

/**
 * Approximately standard normal values, one generator call each: the sum of a uint32's four bytes
 * (Irwin-Hall, 1,021 levels), centred and scaled to unit variance. Four times cheaper than
 * Box-Muller, and for noise and dither the shape of the tails does not matter.
 */
function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  const scale = 1 / Math.sqrt((4 * (256 * 256 - 1)) / 12);
  for (let i = 0; i < n; i++) {
    const u = rng.nextU32();
    out[i] = ((u & 0xff) + ((u >>> 8) & 0xff) + ((u >>> 16) & 0xff) + (u >>> 24) - 510) * scale;
  }
  return out;
}

/** Mean power of the frames within 40 dB of the loudest 20 ms frame: the speech, not the pauses. */
export function activePower(samples: Float32Array, rate = FLITE_RATE): number {
  const frame = Math.round(rate * 0.02);
  const energies: number[] = [];
  for (let s = 0; s + frame <= samples.length; s += frame) {
    let e = 0;
    for (let i = s; i < s + frame; i++) e += samples[i]! * samples[i]!;
    energies.push(e / frame);
  }
  const loudest = energies.reduce((m, e) => Math.max(m, e), 0);
  const active = energies.filter((e) => e >= loudest * 1e-4);
  return active.length > 0 ? active.reduce((a, b) => a + b, 0) / active.length : 0;
}

/** Adds white noise `snrDb` below the active speech power, in place. */
export function addNoise(samples: Float32Array, snrDb: number, rng: Rng): void {
  const sigma = Math.sqrt(activePower(samples) / 10 ** (snrDb / 10));
  addGaussian(samples, sigma, rng);
}

/** Adds white noise of RMS `dbfs` dB relative to full scale (1.0), in place. */
export function addDither(samples: Float32Array, dbfs: number, rng: Rng): void {
  addGaussian(samples, 10 ** (dbfs / 20), rng);
}

function addGaussian(samples: Float32Array, sigma: number, rng: Rng): void {
  if (sigma <= 0) return;
  const g = gaussian(rng, samples.length);
  for (let i = 0; i < samples.length; i++) samples[i]! += sigma * g[i]!;
}
