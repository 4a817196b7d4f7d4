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
