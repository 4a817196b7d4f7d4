import type { StepDecoder } from '../engine/engine.js';
import { Rng } from '../util/rng.js';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Sample among the k most likely tokens; 0 means all. */
  topK: number;
  /** Generation stops for a row once it emits this token (not included in the output). */
  stopToken: number;
  seed: number;
}

/** Picks the next token from one row's logits. */
export function pickToken(logits: Float32Array, o: Pick<SampleOptions, 'temperature' | 'topK'>, rng: Rng): number {
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let idx = Array.from(logits.keys());
  if (o.topK > 0 && o.topK < logits.length) idx = idx.sort((a, b) => logits[b]! - logits[a]!).slice(0, o.topK);
  const max = Math.max(...idx.map((i) => logits[i]!));
  const w = idx.map((i) => Math.exp((logits[i]! - max) / o.temperature));
  let r = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < idx.length; j++) if ((r -= w[j]!) <= 0) return idx[j]!;
  return idx[idx.length - 1]!;
}

/**
 * Autoregressive generation for a batch of prompts with the decoder's KV cache. Returns only the
 * new tokens of each row, cut at the stop token, the length limit or the tower's max_len.
 */
export async function generate(dec: StepDecoder, prompts: readonly number[][], o: SampleOptions): Promise<number[][]> {
  const rng = new Rng(o.seed);
  const out: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  const longest = Math.max(...prompts.map((p) => p.length));
  const budget = Math.min(o.maxNewTokens, dec.maxLen - longest);
  let logits = await dec.prefill(prompts);
  for (let t = 0; t < budget; t++) {
    const next = logits.map((l) => pickToken(l, o, rng));
    next.forEach((tok, b) => {
      if (done[b]) return;
      if (tok === o.stopToken) done[b] = true;
      else out[b]!.push(tok);
    });
    if (done.every(Boolean) || t === budget - 1) break;
    logits = await dec.step(next);
  }
  return out;
}
