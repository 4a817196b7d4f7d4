import type { Modality } from '../config/schema.js';
import type { HostBatch, TrainEngine } from '../engine/engine.js';
import { MASKED } from '../model/attention.js';
import { otherModality, type ZipperShape } from '../model/zipper.js';
import { towerSequences, zipInputs, type Segment, type Specials, type TowerSeq } from '../data/zip-batch.js';
import type { StepModel } from './beam.js';
import { decodeInTurn, roundUp, splitRows, type DecodeOptions, type DecodeOutput } from './modalities.js';
import { cacheBucket, stepMask } from './padding.js';

/**
 * Decoding a zipped model (paper section 3): the caller gives each row's prompt segments and the
 * output modalities in order, e.g. ['text'] for ASR, ['speech'] for TTS, ['text', 'speech'].
 * For each output modality every row gets that modality's begin token and the model generates in
 * it until its end token (or a length limit), then switches to the next.
 *
 * With the KV cache, a modality's run starts with one prefill of both towers (the other tower's
 * states are then fixed: no new tokens reach it while this one generates), keeps the active tower's
 * self-attention keys/values and its cross-attention keys/values engine-side, and feeds one token
 * per row per step. Without it, every step runs both towers over the whole sequence again (the
 * reference the cache is tested against, and the benchmark's baseline).
 */
export interface ZipDecodeOptions extends DecodeOptions {
  shape: ZipperShape;
  useCache: boolean;
}

export async function decodeZipped(engine: TrainEngine, sp: Specials, prompts: readonly (readonly Segment[])[], o: ZipDecodeOptions): Promise<DecodeOutput[]> {
  const maxLen = { text: o.shape.text.max_len, speech: o.shape.speech.max_len };
  return decodeInTurn(engine, sp, prompts, o, (m, rows) => (o.useCache ? new CachedStep(engine, m, rows, maxLen, cacheNames(o.shape, m)) : new FullStep(engine, m, rows, maxLen)));
}

/**
 * One modality's decoding by full recomputation: hypotheses are whole token lists, the model is run
 * over every one of them at every step.
 */
class FullStep implements StepModel {
  private hyps: number[][] = [];
  private parents: number[] = [];

  constructor(
    private readonly engine: TrainEngine,
    private readonly m: Modality,
    private readonly rows: readonly (readonly Segment[])[],
    private readonly maxLen: Record<Modality, number>,
  ) {}

  async start(beams: number): Promise<Float32Array[]> {
    this.parents = this.rows.flatMap((_, b) => Array<number>(beams).fill(b));
    this.hyps = this.parents.map(() => []);
    return this.run();
  }

  async step(parents: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    this.hyps = parents.map((p, i) => [...this.hyps[p]!, tokens[i]!]);
    return this.run();
  }

  private async run(): Promise<Float32Array[]> {
    const seqs = this.hyps.map((h, i) => {
      const r = this.rows[this.parents[i]!]!;
      const last = r[r.length - 1]!;
      return towerSequences([...r.slice(0, -1), { ...last, tokens: [...last.tokens, ...h] }]);
    });
    const out = await this.engine.call('last', inputsFor(seqs, this.m, this.maxLen), { fetch: [`${this.m}_last`] });
    return splitRows(out[`${this.m}_last`]!.data as Float32Array, seqs.length);
  }
}

/** One modality's decoding with the KV cache kept engine-side. */
class CachedStep implements StepModel {
  private pads: number[] = [];
  private len = 0;
  /** Per entry: how many of the other tower's columns hold tokens, and how many columns there are. */
  private otherLens: number[] = [];
  private otherCols = 0;
  /** Slots per layer of the kept self-attention cache (the prefill's S, then buckets). */
  private capacity = 0;

  constructor(
    private readonly engine: TrainEngine,
    private readonly m: Modality,
    private readonly rows: readonly (readonly Segment[])[],
    private readonly maxLen: Record<Modality, number>,
    private readonly names: { cache: string[]; cross: string[] },
  ) {}

  async start(beams: number): Promise<Float32Array[]> {
    const seqs = this.rows.map((r) => towerSequences(r)).flatMap((s) => Array<Record<Modality, TowerSeq>>(beams).fill(s));
    const inputs = inputsFor(seqs, this.m, this.maxLen);
    const S = inputs[`${this.m}_ids`]!.shape[1]!;
    this.len = S;
    this.capacity = S;
    this.pads = seqs.map((s) => S - s[this.m].ids.length);
    this.otherLens = seqs.map((s) => s[otherModality(this.m)].ids.length);
    this.otherCols = inputs[`${otherModality(this.m)}_ids`]!.shape[1]!;
    const keep = Object.fromEntries([...this.names.cache, ...this.names.cross].map((n) => [n, n]));
    const out = await this.engine.call(`prefill_${this.m}`, inputs, { fetch: ['logits'], keep });
    return splitRows(out.logits!.data as Float32Array, seqs.length);
  }

  async step(parents: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    const B = tokens.length;
    if (parents.some((p, i) => p !== i)) await this.reorder(parents);
    const P = this.len;
    const maxLen = this.maxLen[this.m];
    if (P >= maxLen) throw new Error(`decoding reached the ${this.m} tower's max_len ${maxLen}`);
    // The new token's keys go to column P: the cache must hold P + 1 slots (grown by buckets, so a
    // handful of step graphs serve every position).
    const grow = this.capacity < P + 1 ? cacheBucket(P + 1, maxLen) : this.capacity;
    const So = this.otherCols;
    const xmask = new Float32Array(B * So).fill(MASKED);
    const xgate = new Float32Array(B);
    this.otherLens.forEach((n, b) => {
      xmask.fill(0, b * So, b * So + n);
      xgate[b] = n > 0 ? 1 : 0;
    });
    const m = this.m;
    const feeds: HostBatch = {
      [`${m}_ids`]: { data: Int32Array.from(tokens), shape: [B, 1] },
      [`${m}_pos`]: { data: Int32Array.from(this.pads, (pad) => P - pad), shape: [B, 1] },
      [`${m}_mask`]: { data: stepMask(this.pads, P, grow), shape: [B, 1, 1, grow + 1] },
      [`${m}_xmask`]: { data: xmask, shape: [B, 1, 1, So] },
      [`${m}_xgate`]: { data: xgate, shape: [B, 1, 1] },
    };
    const cache = this.names.cache;
    const out = await this.engine.call(`step_${m}`, feeds, {
      fetch: ['logits'],
      kept: { ...Object.fromEntries(cache.map((n) => [`past_${n}`, n])), ...Object.fromEntries(this.names.cross.map((n) => [n, n])) },
      ...(grow !== this.capacity ? { resize: Object.fromEntries(cache.map((n) => [n, { axis: 2, size: grow }])) } : {}),
      write: Object.fromEntries(cache.map((n) => [`new_${n}`, { kept: n, axis: 2, at: P }])),
    });
    this.capacity = grow;
    this.len = P + 1;
    return splitRows(out.logits!.data as Float32Array, B);
  }

  /** Beam search moved hypotheses between rows: gather the kept caches (and row facts) by parent. */
  private async reorder(parents: readonly number[]): Promise<void> {
    const names = [...this.names.cache, ...this.names.cross];
    await this.engine.call('gather', { rows: { data: Int32Array.from(parents), shape: [parents.length] } }, {
      kept: Object.fromEntries(names.map((n) => [n, n])),
      keep: Object.fromEntries(names.map((n) => [`gathered_${n}`, n])),
    });
    this.pads = parents.map((p) => this.pads[p]!);
    this.otherLens = parents.map((p) => this.otherLens[p]!);
  }
}

/** The kept tensors a prefill of tower m produces: its layers' k/v and its zipped layers' xk/xv. */
function cacheNames(z: ZipperShape, m: Modality): { cache: string[]; cross: string[] } {
  const kv = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => [`${prefix}k${i}`, `${prefix}v${i}`]).flat();
  return { cache: kv('', z[m].n_layers), cross: kv('x', z.layers) };
}

/** Inputs of the `last` and `prefill_<m>` functions: tower m left-padded, the other right-padded. */
function inputsFor(seqs: readonly Record<Modality, TowerSeq>[], m: Modality, maxLen: Record<Modality, number>): HostBatch {
  const longest = (t: Modality) => Math.max(1, ...seqs.map((s) => s[t].ids.length));
  const lens = { [m]: roundUp(longest(m), maxLen[m]), [otherModality(m)]: roundUp(longest(otherModality(m)), maxLen[otherModality(m)]) } as Record<Modality, number>;
  for (const t of [m, otherModality(m)]) if (longest(t) > maxLen[t]) throw new Error(`a ${t} sequence of ${longest(t)} tokens is longer than the tower's max_len ${maxLen[t]}`);
  return zipInputs(seqs, lens, m);
}
