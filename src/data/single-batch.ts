import type { Modality } from '../config/schema.js';
import type { HostBatch } from '../engine/engine.js';
import { causalMask } from '../model/attention.js';
import { sharedId, type SharedVocab } from '../model/single-decoder.js';
import type { Segment } from './zip-batch.js';

/**
 * Interleaved examples as one sequence for the single decoder: the segments' shared ids in linear
 * order; a target segment's tokens after its begin token are predicted.
 */
export function singleSequence(ex: readonly Segment[], v: SharedVocab): { ids: number[]; targets: number[]; modalities: (Modality | null)[] } {
  const ids: number[] = [];
  const targets: number[] = [];
  const modalities: (Modality | null)[] = [];
  for (const seg of ex)
    seg.tokens.forEach((tok, k) => {
      const id = sharedId(seg.modality, tok, v);
      if (seg.target && k >= 1) {
        targets[targets.length - 1] = id;
        modalities[modalities.length - 1] = seg.modality;
      }
      ids.push(id);
      targets.push(-1);
      modalities.push(null);
    });
  return { ids, targets, modalities };
}

/**
 * A right-padded LM batch (the tower's loss inputs) of S columns. Loss "token" weighs every target
 * token alike; "modality" (DMLM) gives each modality's tokens 1 / their count, so the loss is the
 * mean of the per-modality means.
 */
export function singleBatch(examples: readonly (readonly Segment[])[], S: number, v: SharedVocab, loss: 'token' | 'modality'): HostBatch {
  const B = examples.length;
  const seqs = examples.map((e) => singleSequence(e, v));
  const ids = new Int32Array(B * S);
  const positions = new Int32Array(B * S);
  const targets = new Int32Array(B * S);
  const weights = new Float32Array(B * S);
  const count = { text: 0, speech: 0 };
  for (const s of seqs) for (const m of s.modalities) if (m) count[m]++;
  if (count.text + count.speech === 0) throw new Error('a batch with no target tokens');
  seqs.forEach((s, b) => {
    if (s.ids.length > S) throw new Error(`a sequence of ${s.ids.length} tokens does not fit ${S} columns`);
    s.ids.forEach((id, i) => {
      ids[b * S + i] = id;
      positions[b * S + i] = i;
      const m = s.modalities[i];
      if (m) {
        targets[b * S + i] = s.targets[i]!;
        weights[b * S + i] = loss === 'modality' ? 1 / count[m] : 1;
      }
    });
    for (let i = s.ids.length; i < S; i++) positions[b * S + i] = i;
  });
  return {
    ids: { data: ids, shape: [B, S] },
    positions: { data: positions, shape: [B, S] },
    mask: { data: causalMask(S), shape: [S, S] },
    targets: { data: targets, shape: [B * S] },
    weights: { data: weights, shape: [B * S] },
  };
}
