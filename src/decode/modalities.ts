import type { Modality } from '../config/schema.js';
import type { TrainEngine } from '../engine/engine.js';
import type { Segment, Specials } from '../data/zip-batch.js';
import { beamSearch, type BeamOptions, type StepModel } from './beam.js';

/**
 * Generation in the caller's order of output modalities (paper section 3), for any model: each
 * row's prompt segments, then for each output modality its begin token and the model's tokens
 * until its end token or a length limit, then the next modality.
 */
export interface DecodeOptions extends BeamOptions {
  /** e.g. ['text'] (ASR), ['speech'] (TTS), ['text', 'speech']. */
  outputs: readonly Modality[];
  /** Most new tokens (end token excluded) a row may get in modality m, given its prompt so far. */
  maxNew(m: Modality, prompt: readonly Segment[]): number;
}

/** Generated ids per output modality, per row (begin/end tokens left out). */
export type DecodeOutput = Partial<Record<Modality, number[]>>;

export async function decodeInTurn(
  engine: TrainEngine,
  sp: Specials,
  prompts: readonly (readonly Segment[])[],
  o: DecodeOptions,
  stepModel: (m: Modality, rows: readonly (readonly Segment[])[]) => StepModel,
): Promise<DecodeOutput[]> {
  const rows = prompts.map((p) => p.map((s) => ({ ...s, tokens: [...s.tokens], target: false })));
  const out: DecodeOutput[] = prompts.map(() => ({}));
  for (const m of o.outputs) {
    const budgets = rows.map((r) => o.maxNew(m, r));
    rows.forEach((r) => r.push({ modality: m, tokens: [sp[m].bos], target: false }));
    const got = await beamSearch(stepModel(m, rows), rows.length, budgets, sp[m].eos, o);
    got.forEach((ids, b) => {
      out[b]![m] = ids;
      rows[b]![rows[b]!.length - 1]!.tokens.push(...ids, sp[m].eos);
    });
    await engine.dropKept();
  }
  return out;
}

/** Pads a length up to a multiple of 8 (fewer distinct graph shapes), capped at max_len. */
export const roundUp = (n: number, cap: number) => Math.min(cap, Math.ceil(n / 8) * 8);

export function splitRows(flat: Float32Array, B: number): Float32Array[] {
  const V = flat.length / B;
  return Array.from({ length: B }, (_, b) => flat.subarray(b * V, (b + 1) * V));
}
