import * as tf from '@tensorflow/tfjs';
import type { TowerShape } from '../config/schema.js';
import { leftPad } from '../decode/padding.js';
import { MASKED, type KV } from '../model/attention.js';
import { towerForward } from '../model/tower.js';
import type { StepDecoder } from './engine.js';
import { tfjsOps } from './tfjs-ops.js';

/**
 * A tower's StepDecoder on tfjs. Rows are left-padded to a common length; each row's positions
 * start at 0 at its first real token and its padding columns are masked out of every later step.
 */
export class TfjsTowerDecoder implements StepDecoder {
  private cache: KV<tf.Tensor>[] | null = null;
  private pads: number[] = [];
  private len = 0;

  constructor(
    private readonly params: Record<string, tf.Tensor>,
    private readonly shape: TowerShape,
  ) {}

  get vocabSize(): number {
    return this.shape.vocab_size;
  }
  get maxLen(): number {
    return this.shape.max_len;
  }

  async prefill(prompts: readonly number[][]): Promise<Float32Array[]> {
    const { B, S, pads, ids, positions, mask } = leftPad(prompts, this.shape.max_len);
    this.pads = pads;
    return this.run(ids, positions, mask, S, [B, 1, S, S], 0);
  }

  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    if (!this.cache) throw new Error('step() before prefill()');
    const B = tokens.length;
    const P = this.len;
    if (P >= this.shape.max_len) throw new Error(`sequence reached the tower's max_len ${this.shape.max_len}`);
    const pos = Int32Array.from(this.pads, (pad) => P - pad);
    const mask = new Float32Array(B * (P + 1));
    this.pads.forEach((pad, b) => mask.fill(MASKED, b * (P + 1), b * (P + 1) + pad));
    return this.run(Int32Array.from(tokens), pos, mask, 1, [B, 1, 1, P + 1], P);
  }

  private async run(ids: Int32Array, pos: Int32Array, mask: Float32Array, S: number, maskShape: number[], P: number): Promise<Float32Array[]> {
    const B = maskShape[0]!;
    const V = this.shape.vocab_size;
    const old = this.cache;
    const { last, cache } = tf.tidy(() => {
      const r = towerForward(
        tfjsOps,
        this.params,
        this.shape,
        { ids: tf.tensor2d(ids, [B, S], 'int32'), positions: tf.tensor2d(pos, [B, S], 'int32'), mask: tf.tensor(mask, maskShape) },
        P > 0 ? old! : undefined,
      );
      const last = tf.reshape(tf.slice(r.logits, [0, S - 1, 0], [B, 1, V]), [B, V]);
      return { last, cache: r.cache.map((kv) => ({ k: tf.keep(kv.k), v: tf.keep(kv.v) })) };
    });
    old?.forEach((kv) => tf.dispose([kv.k, kv.v]));
    this.cache = cache;
    this.len = P + S;
    const flat = (await last.data()) as Float32Array;
    last.dispose();
    return Array.from({ length: B }, (_, b) => flat.slice(b * V, (b + 1) * V));
  }

  dispose(): void {
    this.cache?.forEach((kv) => tf.dispose([kv.k, kv.v]));
    this.cache = null;
  }
}
