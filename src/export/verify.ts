import { pickToken } from '../decode/sample.js';
import { OrtTowerDecoder } from '../engine/onnx/ort-decoder.js';
import { Rng } from '../util/rng.js';
import { ExportedTowerDecoder } from './runtime.js';
import type { TowerSource } from './source.js';

export interface Verification {
  engine: string;
  /** Decoding steps compared after the prompt (the prompt's last logits are compared too). */
  steps: number;
  maxAbsDiff: number;
  tolerance: number;
  /** Row 0's greedy continuation, as the engine chose it. */
  tokens: number[];
}

/**
 * Runs the exported bytes beside the engine's own KV-cache decoder on the same weights: a few
 * prompts of different lengths (so left padding is exercised when the export's batch allows),
 * then greedy steps teacher-forced with the engine's choices, comparing every row's logits.
 * Tolerance is relative to the largest logit: float32 sums differ between a prompt run at once
 * (the engine's prefill) and token by token (the export).
 */
export async function verifyExport(bytes: Uint8Array, src: TowerSource, batch: number, maxSteps = 8): Promise<Verification> {
  const { shape } = src;
  const bos = src.specials.bos;
  const exp = await ExportedTowerDecoder.create(bytes, shape, batch);
  const eng = new OrtTowerDecoder(src.params, shape, { providers: ['cpu'] });
  try {
    const room = Math.max(1, Math.min(4, shape.max_len - 1));
    const prompts = Array.from({ length: batch }, (_, b) => [bos, ...Array.from({ length: room - 1 - (b % room) }, (_, i) => 3 + ((7 * i + 5 * b) % Math.max(1, shape.vocab_size - 3)))]);
    const steps = Math.min(maxSteps, shape.max_len - Math.max(...prompts.map((p) => p.length)));
    let worst = 0;
    let scale = 1;
    const tokens: number[] = [];
    let [a, b] = [await eng.prefill(prompts), await exp.prefill(prompts)];
    for (let t = 0; ; t++) {
      a.forEach((row, r) => {
        for (let i = 0; i < row.length; i++) {
          worst = Math.max(worst, Math.abs(row[i]! - b[r]![i]!));
          scale = Math.max(scale, Math.abs(row[i]!));
        }
      });
      if (t === steps) break;
      const next = a.map((row) => pickToken(row, { temperature: 0, topK: 0 }, new Rng(0)));
      tokens.push(next[0]!);
      [a, b] = [await eng.step(next), await exp.step(next)];
    }
    const tolerance = 1e-4 * scale;
    if (!(worst <= tolerance)) throw new Error(`export verification failed: the exported graph's logits differ from the engine's by ${worst.toExponential(2)} (tolerance ${tolerance.toExponential(2)}); nothing was written`);
    return { engine: 'ort (onnxruntime-node, cpu)', steps, maxAbsDiff: worst, tolerance, tokens };
  } finally {
    eng.dispose();
    exp.dispose();
  }
}
