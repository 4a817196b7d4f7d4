import type { Modality } from '../config/schema.js';
import { Rng } from '../util/rng.js';
import type { AlignedUtterance } from '../data/aligned.js';
import { taskExample, wrap, type Segment, type Specials, type Task } from '../data/zip-batch.js';

/**
 * Which examples make each fine-tuning batch: a pure function of (seed, step), so a resumed run
 * sees the batches an uninterrupted one would have.
 *
 * Per epoch every task contributes round(weight * N) examples (ASR : TTS by sample count, as the
 * paper mixed them), cycling through its own permutation of the N aligned utterances; unimodal
 * examples (the single decoder's DMLM option) come from their own pools the same way. The epoch's
 * examples are shuffled, cut into chunks of 32 batches, each chunk sorted by length and cut into
 * batches (similar lengths share a batch: less padding, fewer compiled shapes), and the batch
 * order shuffled again.
 */
export type ExampleKind = Task | 'text-lm' | 'speech-lm';

export interface ExampleRef {
  kind: ExampleKind;
  /** Index into the aligned utterances, or into the unimodal pool of its kind. */
  index: number;
}

export interface ExamplePools {
  aligned: readonly AlignedUtterance[];
  /** Unimodal sequences (ids without specials), for text-lm / speech-lm examples. */
  text: readonly (readonly number[])[];
  speech: readonly (readonly number[])[];
}

export interface MixWeights {
  asr: number;
  tts: number;
  /** Unimodal examples per aligned example, half text and half speech. */
  unimodal: number;
}

export function toSegments(ref: ExampleRef, pools: ExamplePools, sp: Specials): Segment[] {
  if (ref.kind === 'asr' || ref.kind === 'tts') return taskExample(pools.aligned[ref.index]!, ref.kind, sp);
  const m: Modality = ref.kind === 'text-lm' ? 'text' : 'speech';
  return [{ modality: m, tokens: wrap(m, pools[m][ref.index]!, sp), target: true }];
}

export function exampleLength(ref: ExampleRef, pools: ExamplePools): number {
  if (ref.kind === 'asr' || ref.kind === 'tts') {
    const u = pools.aligned[ref.index]!;
    return u.text.length + u.speech.length + 4;
  }
  return pools[ref.kind === 'text-lm' ? 'text' : 'speech'][ref.index]!.length + 2;
}

const CHUNK_BATCHES = 32;

export class MixSampler {
  readonly perEpoch: number;
  private epoch = -1;
  private plan: ExampleRef[][] = [];

  constructor(
    private readonly pools: ExamplePools,
    private readonly w: MixWeights,
    private readonly batch: number,
    private readonly seed: number,
  ) {
    const total = this.counts().reduce((a, c) => a + c.n, 0);
    this.perEpoch = Math.floor(total / batch);
    if (this.perEpoch < 1) throw new Error(`${total} examples per epoch, fewer than one batch of ${batch}: use a larger aligned fraction or a smaller train.batch_size`);
  }

  private counts(): { kind: ExampleKind; n: number; pool: number }[] {
    const N = this.pools.aligned.length;
    const uni = Math.round(this.w.unimodal * Math.round((this.w.asr + this.w.tts) * N));
    return [
      { kind: 'asr' as const, n: Math.round(this.w.asr * N), pool: N },
      { kind: 'tts' as const, n: Math.round(this.w.tts * N), pool: N },
      { kind: 'text-lm' as const, n: this.pools.text.length ? Math.ceil(uni / 2) : 0, pool: this.pools.text.length },
      { kind: 'speech-lm' as const, n: this.pools.speech.length ? Math.floor(uni / 2) : 0, pool: this.pools.speech.length },
    ].filter((c) => c.n > 0);
  }

  position(step: number): { epoch: number; offset: number } {
    return { epoch: Math.floor(step / this.perEpoch), offset: step % this.perEpoch };
  }

  at(step: number): ExampleRef[] {
    const { epoch, offset } = this.position(step);
    if (epoch !== this.epoch) {
      this.plan = this.planEpoch(epoch);
      this.epoch = epoch;
    }
    return this.plan[offset]!;
  }

  private planEpoch(epoch: number): ExampleRef[][] {
    const rng = new Rng((this.seed * 1000003 + epoch * 7919) >>> 0);
    const all: ExampleRef[] = [];
    for (const c of this.counts()) {
      const perm = rng.permutation(c.pool);
      for (let i = 0; i < c.n; i++) all.push({ kind: c.kind, index: perm[i % c.pool]! });
    }
    const order = rng.permutation(all.length);
    const shuffled = Array.from(order, (i) => all[i]!);
    const batches: ExampleRef[][] = [];
    const chunk = CHUNK_BATCHES * this.batch;
    for (let s = 0; s < shuffled.length; s += chunk) {
      const part = shuffled.slice(s, s + chunk).sort((a, b) => exampleLength(a, this.pools) - exampleLength(b, this.pools));
      for (let b = 0; b + this.batch <= part.length; b += this.batch) batches.push(part.slice(b, b + this.batch));
    }
    const border = rng.permutation(batches.length);
    return Array.from(border, (i) => batches[i]!).slice(0, this.perEpoch);
  }
}
