import type { Modality } from '../config/schema.js';
import type { HostBatch } from '../engine/engine.js';
import { MASKED } from '../model/attention.js';
import { MODALITIES, otherModality } from '../model/zipper.js';

/**
 * Interleaved examples as zipper batches. An example is a list of segments in the order of the
 * linear (interleaved) sequence; each tower sees its own modality's segments, one after another,
 * and a position cross-attends to the other tower's tokens that come before it in that linear order.
 */
export interface Segment {
  modality: Modality;
  /** The segment's ids with its begin and end tokens (<bos> ... <eos>, <boa> ... <eoa>). */
  tokens: readonly number[];
  /** Predict this segment (an output); its begin token is given, not predicted. */
  target: boolean;
}

export type Task = 'asr' | 'tts';
export const TASKS: readonly Task[] = ['asr', 'tts'];

/** Begin/end ids per modality. */
export type Specials = Record<Modality, { bos: number; eos: number }>;

export const wrap = (m: Modality, ids: readonly number[], sp: Specials) => [sp[m].bos, ...ids, sp[m].eos];

/** ASR: speech then text (predicted); TTS: text then speech (predicted). */
export function taskExample(u: { text: readonly number[]; speech: readonly number[] }, task: Task, sp: Specials): Segment[] {
  const speech: Segment = { modality: 'speech', tokens: wrap('speech', u.speech, sp), target: task === 'tts' };
  const text: Segment = { modality: 'text', tokens: wrap('text', u.text, sp), target: task === 'asr' };
  return task === 'asr' ? [speech, text] : [text, speech];
}

/** One tower's side of an example: ids, each token's index in the linear sequence, targets (-1: none). */
export interface TowerSeq {
  ids: number[];
  lin: number[];
  targets: number[];
}

export function towerSequences(ex: readonly Segment[]): Record<Modality, TowerSeq> {
  const out: Record<Modality, TowerSeq> = { text: { ids: [], lin: [], targets: [] }, speech: { ids: [], lin: [], targets: [] } };
  let lin = 0;
  for (const seg of ex) {
    const t = out[seg.modality];
    seg.tokens.forEach((tok, k) => {
      // The previous position of this tower predicts this token.
      if (seg.target && k >= 1) t.targets[t.targets.length - 1] = tok;
      t.ids.push(tok);
      t.lin.push(lin++);
      t.targets.push(-1);
    });
  }
  return out;
}

/**
 * The zipper's input tensors for rows of tower sequences, each tower padded to `lens[m]` columns:
 * right-padded (training: the causal mask is then a constant) or left-padded (decoding: every row's
 * last token in the last column, positions from 0 at its first real token, `<m>_mask` given).
 */
export function zipInputs(rows: readonly Record<Modality, TowerSeq>[], lens: Record<Modality, number>, leftPadded: Modality | null = null): HostBatch {
  const B = rows.length;
  const batch: HostBatch = {};
  const pads = (m: Modality) => rows.map((r) => (m === leftPadded ? lens[m] - r[m].ids.length : 0));
  for (const m of MODALITIES) {
    const o = otherModality(m);
    const S = lens[m];
    const So = lens[o];
    const ids = new Int32Array(B * S);
    const pos = new Int32Array(B * S);
    const xmask = new Float32Array(B * S * So).fill(MASKED);
    const xgate = new Float32Array(B * S);
    const padM = pads(m);
    const padO = pads(o);
    rows.forEach((r, b) => {
      const t = r[m];
      if (t.ids.length > S) throw new Error(`a ${m} sequence of ${t.ids.length} tokens does not fit ${S} columns`);
      for (let i = 0; i < t.ids.length; i++) {
        const col = padM[b]! + i;
        ids[b * S + col] = t.ids[i]!;
        pos[b * S + col] = i;
        for (let j = 0; j < r[o].ids.length && r[o].lin[j]! < t.lin[i]!; j++) {
          xmask[(b * S + col) * So + padO[b]! + j] = 0;
          xgate[b * S + col] = 1;
        }
      }
    });
    batch[`${m}_ids`] = { data: ids, shape: [B, S] };
    batch[`${m}_pos`] = { data: pos, shape: [B, S] };
    batch[`${m}_xmask`] = { data: xmask, shape: [B, 1, S, So] };
    batch[`${m}_xgate`] = { data: xgate, shape: [B, S, 1] };
    if (m === leftPadded) {
      const mask = new Float32Array(B * S * S);
      padM.forEach((pad, b) => {
        for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) if (j > i || j < pad) mask[(b * S + i) * S + j] = MASKED;
      });
      batch[`${m}_mask`] = { data: mask, shape: [B, 1, S, S] };
    }
  }
  return batch;
}

/**
 * A training batch: zipInputs, right-padded, plus `<m>_targets`, `<m>_weights` and `<m>_scale` for
 * each tower in `withTargets` (the same set for every batch of a run, so one compiled graph per
 * shape). Scales are the towers' shares of the batch's target tokens, so the loss is the mean over
 * all of them; a tower with none in this batch gets weights of 1 and scale 0, which keeps its mean
 * finite and its term an exact zero.
 */
export function zipBatch(examples: readonly (readonly Segment[])[], lens: Record<Modality, number>, withTargets: readonly Modality[]): HostBatch {
  const rows = examples.map(towerSequences);
  const batch = zipInputs(rows, lens);
  const counts = new Map<Modality, number>();
  for (const m of withTargets) {
    const S = lens[m];
    const targets = new Int32Array(rows.length * S);
    const weights = new Float32Array(rows.length * S);
    rows.forEach((r, b) =>
      r[m].targets.forEach((t, i) => {
        if (t >= 0) {
          targets[b * S + i] = t;
          weights[b * S + i] = 1;
        }
      }),
    );
    batch[`${m}_targets`] = { data: targets, shape: [rows.length * S] };
    batch[`${m}_weights`] = { data: weights, shape: [rows.length * S] };
    counts.set(m, weights.reduce((a, x) => a + x, 0));
  }
  const total = [...counts.values()].reduce((a, x) => a + x, 0);
  if (total === 0) throw new Error(`a batch with no target tokens for ${withTargets.join(' or ') || 'any tower'}`);
  for (const m of withTargets) {
    const n = counts.get(m)!;
    if (n === 0) (batch[`${m}_weights`]!.data as Float32Array).fill(1);
    batch[`${m}_scale`] = { data: Float32Array.of(n / total), shape: [] };
  }
  return batch;
}

/** Target tokens in a batch (what a dev mean is weighted by). */
export function targetCount(batch: HostBatch): number {
  let n = 0;
  for (const m of MODALITIES) {
    const t = batch[`${m}_targets`];
    if (!t) continue;
    const scale = batch[`${m}_scale`]!.data[0]!;
    if (scale > 0) n += (batch[`${m}_weights`]!.data as Float32Array).reduce((a, x) => a + x, 0);
  }
  return n;
}
