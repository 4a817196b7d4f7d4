// Speech-like synthetic signals for the speech tokenizer's tests: runs of "phones" (harmonic
// complexes with two formant peaks, noise bursts, silences) at a speaker-specific pitch. Not speech,
// but it has what the tokenizer must handle: steady segments, transitions, silence, pitch.
import { Rng } from '../../src/util/rng.js';

export const RATE = 16000;

/** Formant pairs (Hz) of a few vowels. */
const VOWELS: [number, number][] = [[730, 1090], [270, 2290], [530, 1840], [300, 870], [660, 1720], [490, 1350]];

/** `seconds` of speech-like signal: phones of 60-250 ms at pitch f0 (Hz). */
export function speechLike(seconds: number, seed: number, f0 = 120): Float32Array {
  const rng = new Rng(seed);
  const n = Math.round(seconds * RATE);
  const out = new Float32Array(n);
  let t = 0;
  let phase = 0;
  while (t < n) {
    const len = Math.min(n - t, Math.round((0.06 + 0.19 * rng.next()) * RATE));
    const kind = rng.int(VOWELS.length + 2);
    if (kind < VOWELS.length) {
      const [f1, f2] = VOWELS[kind]!;
      const pitch = f0 * (0.9 + 0.2 * rng.next());
      for (let i = 0; i < len; i++) {
        phase += (2 * Math.PI * pitch) / RATE;
        let v = 0;
        for (let h = 1; h * pitch < 4000; h++) {
          const f = h * pitch;
          const env = Math.exp(-(((f - f1) / 120) ** 2)) + 0.7 * Math.exp(-(((f - f2) / 150) ** 2)) + 0.02;
          v += env * Math.sin(h * phase);
        }
        out[t + i] = 0.1 * v;
      }
    } else if (kind === VOWELS.length) {
      // A fricative: white noise, high-passed by a first difference.
      let prev = 0;
      for (let i = 0; i < len; i++) {
        const w = rng.next() * 2 - 1;
        out[t + i] = 0.15 * (w - prev);
        prev = w;
      }
    } // else silence
    t += len;
  }
  return out;
}

/** A pure tone. */
export function tone(hz: number, seconds: number, amp = 0.5): Float32Array {
  return Float32Array.from({ length: Math.round(seconds * RATE) }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / RATE));
}
