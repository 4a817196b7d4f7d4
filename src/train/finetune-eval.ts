import type { AlignedUtterance } from '../data/aligned.js';
import { targetCount, taskExample, type Segment, type Specials, type Task } from '../data/zip-batch.js';
import type { HostBatch, TrainEngine } from '../engine/engine.js';
import { MODALITIES, type ZipperShape } from '../model/zipper.js';

/** What fine-tuning measures at each evaluation besides the dev loss (src/train/finetune.ts). */

/**
 * Dev batches of one task, by length; and the same with each utterance's input replaced by the
 * next utterance's (ASR: another's audio; TTS: another's text), for the conditioning gap: how much
 * worse the output is predicted from the wrong input. Near 0 means the model does not listen (or read).
 */
export function devBatches(dev: readonly AlignedUtterance[], task: Task, size: number, sp: Specials, makeBatch: (e: Segment[][]) => HostBatch) {
  const order = dev.map((u, i) => ({ u, i })).sort((a, b) => a.u.speech.length + a.u.text.length - (b.u.speech.length + b.u.text.length));
  const matched: HostBatch[] = [];
  const mismatched: HostBatch[] = [];
  const shift = (i: number) => dev[(i + 1) % dev.length]!;
  for (let s = 0; s < order.length; s += size) {
    const part = order.slice(s, s + size);
    matched.push(makeBatch(part.map(({ u }) => taskExample(u, task, sp))));
    mismatched.push(makeBatch(part.map(({ u, i }) => taskExample(task === 'asr' ? { text: u.text, speech: shift(i).speech } : { text: shift(i).text, speech: u.speech }, task, sp))));
  }
  return { matched, mismatched };
}

/** Mean loss per target token over batches (each batch's mean weighted by its target count). */
export async function meanLoss(engine: TrainEngine, batches: readonly HostBatch[]): Promise<{ loss: number; tokens: number }> {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const w = 'weights' in b ? (b.weights!.data as Float32Array).reduce((a, x) => a + (x > 0 ? 1 : 0), 0) : targetCount(b);
    sum += (await engine.evalLoss(b)) * w;
    n += w;
  }
  return { loss: sum / n, tokens: n };
}

/** Mean tanh of each tower's attention and feed-forward gates: how open the zip is. */
export function gateValues(params: ReadonlyMap<string, Float32Array>, z: ZipperShape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of MODALITIES)
    for (const g of ['attn', 'ff']) {
      let s = 0;
      for (let n = 0; n < z.layers; n++) s += Math.tanh(params.get(`zip.${m}.x.${n}.${g}_gate`)![0]!);
      out[`gate_${m}_${g}`] = s / z.layers;
    }
  return out;
}
