import type { HostBatch } from '../engine/engine.js';
import { causalMask } from '../model/attention.js';
import { Rng } from '../util/rng.js';

/**
 * Language-modelling data for a tower: sentences packed into one token stream
 * (<bos> s1 <eos> <bos> s2 <eos> ...) cut into windows of seq_len + 1 tokens at stride seq_len, so
 * every token is a target exactly once per epoch.
 */
export function packWindows(sentences: readonly number[][], bos: number, eos: number, seqLen: number): Int32Array[] {
  let total = 0;
  for (const s of sentences) total += s.length + 2;
  const stream = new Int32Array(total);
  let k = 0;
  for (const s of sentences) {
    stream[k++] = bos;
    stream.set(s, k);
    k += s.length;
    stream[k++] = eos;
  }
  const windows: Int32Array[] = [];
  for (let start = 0; start + seqLen + 1 <= stream.length; start += seqLen) windows.push(stream.subarray(start, start + seqLen + 1));
  return windows;
}

/** A batch of windows [seq_len + 1] as the tower's LM inputs: ids, positions, mask, targets, weights. */
export function lmBatch(windows: readonly Int32Array[]): HostBatch {
  const B = windows.length;
  const S = windows[0]!.length - 1;
  const ids = new Int32Array(B * S);
  const targets = new Int32Array(B * S);
  const positions = new Int32Array(B * S);
  windows.forEach((w, b) => {
    ids.set(w.subarray(0, S), b * S);
    targets.set(w.subarray(1), b * S);
    for (let i = 0; i < S; i++) positions[b * S + i] = i;
  });
  return {
    ids: { data: ids, shape: [B, S] },
    positions: { data: positions, shape: [B, S] },
    mask: { data: causalMask(S), shape: [S, S] },
    targets: { data: targets, shape: [B * S] },
    weights: { data: new Float32Array(B * S).fill(1), shape: [B * S] },
  };
}

/**
 * Which windows make batch number `step` (0-based): a fresh permutation per epoch from a seeded
 * generator, so the data position is a pure function of (seed, step) and a resumed run sees the
 * same batches as an uninterrupted one.
 */
export class EpochSampler {
  private epoch = -1;
  private perm: Int32Array = new Int32Array(0);

  constructor(
    readonly size: number,
    readonly rows: number,
    readonly seed: number,
  ) {
    if (size < rows) throw new Error(`only ${size} training windows, fewer than one batch of ${rows}: use more data or a smaller batch_tokens/seq_len`);
  }

  /** Position of batch `step`: epoch and offset into that epoch's order. */
  position(step: number): { epoch: number; offset: number } {
    const perEpoch = Math.floor(this.size / this.rows);
    return { epoch: Math.floor(step / perEpoch), offset: (step % perEpoch) * this.rows };
  }

  indices(step: number): number[] {
    const { epoch, offset } = this.position(step);
    if (epoch !== this.epoch) {
      this.perm = new Rng(this.seed * 1000003 + epoch).permutation(this.size);
      this.epoch = epoch;
    }
    return Array.from(this.perm.subarray(offset, offset + this.rows));
  }
}
