import * as tf from '@tensorflow/tfjs';
import type { Modality, TowerShape } from '../../src/config/schema.js';
import type { HostBatch } from '../../src/engine/engine.js';
import { initParams } from '../../src/model/params.js';
import { zipperSpecs, type ZipperShape } from '../../src/model/zipper.js';
import { taskExample, zipBatch, type Segment, type Specials } from '../../src/data/zip-batch.js';
import { TINY, randomRows } from '../helpers.js';

/** A tiny zipper for tests: towers of different widths and depths. */
export const TINY_SPEECH: TowerShape = { vocab_size: 29, d_model: 12, n_layers: 3, n_heads: 2, ff_mult: 2, max_len: 40 };

export function tinyZipper(over: Partial<ZipperShape> = {}): ZipperShape {
  return { text: TINY, speech: TINY_SPEECH, layers: 2, input_projection: { text: true, speech: true }, input_projection_layers: 3, context_projection_layers: 2, context_norm: false, gate_init: 0.5, cross_init: "gpt2", ...over };
}

export const SPECIALS: Specials = { text: { bos: 1, eos: 2 }, speech: { bos: 1, eos: 2 } };

export function zipTensors(z: ZipperShape, seed = 3): Record<string, tf.Tensor> {
  const host = initParams(zipperSpecs(z), seed);
  return Object.fromEntries(zipperSpecs(z).map((s) => [s.name, tf.tensor(host.get(s.name)!, s.shape)]));
}

export function toTf(b: HostBatch): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(b).map(([k, t]) => [k, tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32')]));
}

/** Rows of random aligned pairs as ASR and TTS examples (alternating). */
export function tinyExamples(n: number, seed = 1): Segment[][] {
  const texts = randomRows(n, 6, TINY.vocab_size, seed);
  const speech = randomRows(n, 11, TINY_SPEECH.vocab_size, seed + 100);
  return texts.map((t, i) => taskExample({ text: Array.from(t.subarray(0, 3 + (i % 4))), speech: Array.from(speech[i]!.subarray(0, 6 + (i % 6))) }, i % 2 ? 'tts' : 'asr', SPECIALS));
}

export const LENS: Record<Modality, number> = { text: 10, speech: 16 };

export function tinyZipBatch(n: number, seed = 1): HostBatch {
  return zipBatch(tinyExamples(n, seed), LENS, ['text', 'speech']);
}
