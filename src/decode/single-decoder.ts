import type { Modality, TowerShape } from '../config/schema.js';
import type { TrainEngine } from '../engine/engine.js';
import { sharedId, sharedRange, type SharedVocab } from '../model/single-decoder.js';
import { singleSequence } from '../data/single-batch.js';
import type { Segment, Specials } from '../data/zip-batch.js';
import type { StepModel } from './beam.js';
import { decodeInTurn, roundUp, splitRows, type DecodeOptions, type DecodeOutput } from './modalities.js';
import { cacheBucket, leftPad, stepMask } from './padding.js';

/**
 * Decoding the single-decoder baseline: one sequence of shared ids, the KV cache kept engine-side.
 * While generating modality m only m's ids compete (the model could otherwise wander into the
 * other modality's tokens mid-transcript); logits come back indexed by m's own ids, so the search
 * and its output are the same as the zipper's.
 */
export interface SingleDecodeOptions extends DecodeOptions {
  shape: TowerShape;
  vocab: SharedVocab;
}

export function decodeSingle(engine: TrainEngine, sp: Specials, prompts: readonly (readonly Segment[])[], o: SingleDecodeOptions): Promise<DecodeOutput[]> {
  return decodeInTurn(engine, sp, prompts, o, (m, rows) => new SingleStep(engine, m, rows, o));
}

class SingleStep implements StepModel {
  private pads: number[] = [];
  private len = 0;
  /** Slots per layer of the kept cache (the prefill's S, then buckets). */
  private capacity = 0;
  private readonly cache: string[];

  constructor(
    private readonly engine: TrainEngine,
    private readonly m: Modality,
    private readonly rows: readonly (readonly Segment[])[],
    private readonly o: SingleDecodeOptions,
  ) {
    this.cache = Array.from({ length: o.shape.n_layers }, (_, i) => [`k${i}`, `v${i}`]).flat();
  }

  async start(beams: number): Promise<Float32Array[]> {
    const seqs = this.rows.flatMap((r) => Array<number[]>(beams).fill(singleSequence(r, this.o.vocab).ids));
    const longest = Math.max(...seqs.map((s) => s.length));
    if (longest > this.o.shape.max_len) throw new Error(`a prompt of ${longest} tokens is longer than the single decoder's max_len ${this.o.shape.max_len}`);
    const p = leftPad(seqs, this.o.shape.max_len, roundUp(longest, this.o.shape.max_len));
    this.pads = p.pads;
    this.len = p.S;
    this.capacity = p.S;
    const out = await this.engine.call(
      'prefill',
      { ids: { data: p.ids, shape: [p.B, p.S] }, positions: { data: p.positions, shape: [p.B, p.S] }, mask: { data: p.mask, shape: [p.B, 1, p.S, p.S] } },
      { fetch: ['logits'], keep: Object.fromEntries(this.cache.map((n) => [n, n])) },
    );
    return this.local(out.logits!.data as Float32Array, p.B);
  }

  async step(parents: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    const B = tokens.length;
    if (parents.some((p, i) => p !== i)) {
      await this.engine.call('gather', { rows: { data: Int32Array.from(parents), shape: [B] } }, { kept: Object.fromEntries(this.cache.map((n) => [n, n])), keep: Object.fromEntries(this.cache.map((n) => [`gathered_${n}`, n])) });
      this.pads = parents.map((p) => this.pads[p]!);
    }
    const P = this.len;
    const maxLen = this.o.shape.max_len;
    if (P >= maxLen) throw new Error(`decoding reached the single decoder's max_len ${maxLen}`);
    const grow = this.capacity < P + 1 ? cacheBucket(P + 1, maxLen) : this.capacity;
    const out = await this.engine.call(
      'step',
      {
        ids: { data: Int32Array.from(tokens, (t) => sharedId(this.m, t, this.o.vocab)), shape: [B, 1] },
        positions: { data: Int32Array.from(this.pads, (pad) => P - pad), shape: [B, 1] },
        mask: { data: stepMask(this.pads, P, grow), shape: [B, 1, 1, grow + 1] },
      },
      {
        fetch: ['logits'],
        kept: Object.fromEntries(this.cache.map((n) => [`past_${n}`, n])),
        ...(grow !== this.capacity ? { resize: Object.fromEntries(this.cache.map((n) => [n, { axis: 2, size: grow }])) } : {}),
        write: Object.fromEntries(this.cache.map((n) => [`new_${n}`, { kept: n, axis: 2, at: P }])),
      },
    );
    this.capacity = grow;
    this.len = P + 1;
    return this.local(out.logits!.data as Float32Array, B);
  }

  /** Shared-vocabulary logits -> this modality's own ids (speech <pad> never chosen). */
  private local(flat: Float32Array, B: number): Float32Array[] {
    const [lo, hi] = sharedRange(this.m, this.o.vocab);
    return splitRows(flat, B).map((row) => {
      if (this.m === 'text') return row.slice(lo, hi);
      const l = new Float32Array(hi - lo + 1).fill(-Infinity);
      l.set(row.subarray(lo, hi), 1);
      return l;
    });
  }
}
