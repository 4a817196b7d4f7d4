import { MASKED } from '../model/attention.js';

/** A batch of prompts of different lengths as one left-padded prefill input. */
export interface PaddedPrompts {
  B: number;
  S: number;
  /** Padding columns at the start of each row. */
  pads: number[];
  ids: Int32Array;
  /** Each row's positions start at 0 at its first real token. */
  positions: Int32Array;
  /** Additive [B, 1, S, S] mask: causal, and no row attends to its padding. */
  mask: Float32Array;
}

/**
 * Left-pads prompts to a common length (at least `width`) so every row's next token sits in the
 * last column; decoders prefill from this, then mask each row's padding in every later step.
 */
export function leftPad(prompts: readonly (readonly number[])[], maxLen: number, width = 0): PaddedPrompts {
  const S = Math.max(width, ...prompts.map((p) => p.length));
  if (S === 0) throw new Error("every prompt needs at least one token (the tower's <bos>)");
  if (S > maxLen) throw new Error(`a prompt of ${S} tokens is longer than the tower's max_len ${maxLen}`);
  const B = prompts.length;
  const pads = prompts.map((p) => S - p.length);
  const ids = new Int32Array(B * S);
  const positions = new Int32Array(B * S);
  const mask = new Float32Array(B * S * S);
  prompts.forEach((p, b) => {
    ids.set(p, b * S + pads[b]!);
    for (let i = 0; i < S; i++) {
      positions[b * S + i] = Math.max(0, i - pads[b]!);
      for (let j = 0; j < S; j++) if (j > i || j < pads[b]!) mask[(b * S + i) * S + j] = MASKED;
    }
  });
  return { B, S, pads, ids, positions, mask };
}

/** Smallest cache a step graph is built for: fewer, larger buckets would mean fewer sessions. */
const MIN_BUCKET = 32;

/**
 * Cache slots a step reads when `need` slots must fit: powers of two from MIN_BUCKET, capped at
 * max_len, so a generation run compiles a handful of step graphs and attention (and the concat
 * of each step's keys onto the cache) stays within twice the used length.
 */
export function cacheBucket(need: number, maxLen: number): number {
  let c = MIN_BUCKET;
  while (c < need) c *= 2;
  return Math.min(c, maxLen);
}

/**
 * The additive mask of one decoding step over a left-aligned cache of C slots plus the new token
 * ([B, 1, 1, C + 1] flat): slot j holds column j, hidden when it is a row's padding (j < pad) or
 * not yet written (j >= P, the columns so far); slot C, the new token, is always seen.
 */
export function stepMask(pads: readonly number[], P: number, C: number): Float32Array {
  const mask = new Float32Array(pads.length * (C + 1));
  pads.forEach((pad, b) => {
    mask.fill(MASKED, b * (C + 1), b * (C + 1) + pad);
    mask.fill(MASKED, b * (C + 1) + P, b * (C + 1) + C);
  });
  return mask;
}
