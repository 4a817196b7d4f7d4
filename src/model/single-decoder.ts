import type { Modality, TowerShape } from '../config/schema.js';
import type { ModelDef } from '../engine/engine.js';
import { cacheOutputs, gatherRows, lastColumn, newEntries, pastOf } from './functions.js';
import { initParams } from './params.js';
import { towerForward, towerLoss, towerSpecs, type LMBatch } from './tower.js';

/**
 * The single-decoder baseline (vocabulary expansion, AudioPaLM/DMLM-style): the text tower with
 * the speech tokens added to its vocabulary, every parameter fine-tuned on the aligned mix.
 *
 * Shared ids: text ids unchanged; speech id s >= 1 (<boa>, <eoa>, units) at V_text + s - 1
 * (the speech <pad> is never used), so 1,026 new rows for K = 1,024 units, as in the paper.
 * Positions: the table grows to text max_len + speech max_len (one ASR/TTS example must fit);
 * the paper's PaLM has relative positions, our towers learned absolute ones, so the new rows start
 * fresh (our choice, documented in the README).
 */
export interface SharedVocab {
  text: number;
  speech: number;
}

export const sharedVocabSize = (v: SharedVocab) => v.text + v.speech - 1;

/** A modality's id as the single decoder sees it. */
export function sharedId(m: Modality, id: number, v: SharedVocab): number {
  if (m === 'text') return id;
  if (id < 1) throw new Error(`speech id ${id} has no place in the shared vocabulary (<pad> is not used)`);
  return v.text + id - 1;
}

/** The shared ids of modality m: [lo, hi). */
export function sharedRange(m: Modality, v: SharedVocab): [number, number] {
  return m === 'text' ? [0, v.text] : [v.text, sharedVocabSize(v)];
}

export function singleDecoderShape(text: TowerShape, speech: TowerShape): TowerShape {
  return { ...text, vocab_size: sharedVocabSize({ text: text.vocab_size, speech: speech.vocab_size }), max_len: text.max_len + speech.max_len };
}

/**
 * Starting weights: the pretrained text tower's, with the new embedding rows (speech tokens) and
 * position rows drawn as a fresh tower's would be; or, for `scratch`, a fresh tower throughout.
 */
export function singleDecoderInit(shape: TowerShape, text: ReadonlyMap<string, Float32Array> | null, seed: number): Map<string, Float32Array> {
  const specs = towerSpecs(shape);
  const p = initParams(specs, seed);
  if (!text) return p;
  for (const s of specs) {
    const pre = text.get(s.name);
    if (!pre) throw new Error(`text tower has no "${s.name}"`);
    const dst = p.get(s.name)!;
    if (pre.length > dst.length) throw new Error(`text tower's "${s.name}" is larger than the single decoder's`);
    // Row-major: the pretrained rows are a prefix of the grown tables (wte, wpe); others are equal.
    dst.set(pre, 0);
  }
  return p;
}

export function singleDecoderModel(shape: TowerShape): ModelDef {
  return {
    kind: 'single-decoder',
    specs: towerSpecs(shape),
    trainable: () => true,
    loss: (ops, p, b) => towerLoss(ops, p, shape, b as unknown as LMBatch<never>),
    functions: {
      gather: gatherRows,
      // Left-padded prompts: ids, positions [B, S], mask [B, 1, S, S].
      prefill: (ops, p, b) => {
        const r = towerForward(ops, p, shape, { ids: b.ids!, positions: b.positions!, mask: b.mask! });
        return { logits: lastColumn(ops, r.logits), ...cacheOutputs(r.cache) };
      },
      // One token per row over a cache of C slots: mask [B, 1, 1, C + 1]; outputs new_k<i>, new_v<i>.
      step: (ops, p, b) => {
        const past = pastOf(b, shape.n_layers, 'step');
        const r = towerForward(ops, p, shape, { ids: b.ids!, positions: b.positions!, mask: b.mask! }, past);
        return { logits: lastColumn(ops, r.logits), ...newEntries(ops, r.cache, ops.shape(past[0]!.k)[2]!) };
      },
    },
  };
}
