import type { TowerShape } from '../../config/schema.js';
import { cacheBucket, leftPad, stepMask } from '../../decode/padding.js';
import { towerSpecs } from '../../model/tower.js';
import type { StepDecoder } from '../engine.js';
import type { Graph } from './graph.js';
import { GraphSessions, graphKey } from './graph-cache.js';
import type { SlotResize, SlotWrite } from './protocol.js';
import { OrtRunner, type RunnerOptions } from './runner.js';
import { buildPrefillGraph, buildStepGraph } from './tower-graphs.js';

export interface OrtDecoderOptions extends RunnerOptions {
  cacheDir?: string;
}

/**
 * A tower's StepDecoder on onnxruntime, with the same conventions as TfjsTowerDecoder: rows
 * left-padded to a common length, each row's positions starting at 0 at its first real token, its
 * padding columns masked out of every later step.
 *
 * Speed (tower-graphs.ts, 'append' cache): the KV cache lives in the worker as one left-aligned
 * buffer per layer and tensor, grown by buckets (cacheBucket); a step graph reads it, outputs only
 * the new token's keys/values, and the worker writes those into the buffer in place, so no cache
 * travels between threads or is copied out and back. Step graphs carry the weights as initializers
 * (onnxruntime pre-packs the matrices once; a decoder lives for a generation run, its weights do
 * not change); prefill graphs, one per prompt shape, read the weights from worker slots instead,
 * so prompts of many lengths do not each hold a copy.
 */
export class OrtTowerDecoder implements StepDecoder {
  private runner: Promise<OrtRunner> | null = null;
  private readonly sessions: GraphSessions;
  private pads: number[] = [];
  private len = 0;
  private rows = 0;
  /** Slots per layer of the worker's cache buffers (0 before a prefill). */
  private capacity = 0;

  constructor(
    private readonly params: ReadonlyMap<string, Float32Array>,
    private readonly shape: TowerShape,
    private readonly options: OrtDecoderOptions = {},
  ) {
    this.sessions = new GraphSessions(options.cacheDir);
  }

  get vocabSize(): number {
    return this.shape.vocab_size;
  }
  get maxLen(): number {
    return this.shape.max_len;
  }

  async prefill(prompts: readonly number[][]): Promise<Float32Array[]> {
    const { B, S, pads, ids, positions, mask } = leftPad(prompts, this.shape.max_len);
    const key = await this.session({ graph: 'prefill', B, S }, () => buildPrefillGraph(this.shape, B, S, { cache: 'append', weights: 'inputs' }), true);
    const r = await this.start();
    const weights = Object.fromEntries(towerSpecs(this.shape).map((s) => [s.name, weightSlot(s.name)]));
    // A new prompt batch starts a new cache: its buffers are made afresh, B rows, S columns used.
    const capacity = cacheBucket(Math.min(S + 1, this.shape.max_len), this.shape.max_len);
    this.dropCache();
    const out = await r.run(key, {
      feeds: { ids: { data: ids, shape: [B, S] }, positions: { data: positions, shape: [B, S] }, mask: { data: mask, shape: [B, 1, S, S] } },
      slotFeeds: weights,
      resize: this.cacheResize(B, capacity),
      write: this.cacheWrite(0),
      fetch: ['logits'],
    });
    this.pads = pads;
    this.len = S;
    this.rows = B;
    this.capacity = capacity;
    return this.rowsOf(out.logits!.data as Float32Array);
  }

  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    if (!this.rows) throw new Error('step() before prefill()');
    const B = tokens.length;
    if (B !== this.rows) throw new Error(`step() with ${B} tokens after a prefill of ${this.rows} rows`);
    const P = this.len;
    const C = this.shape.max_len;
    if (P >= C) throw new Error(`sequence reached the tower's max_len ${C}`);
    // The new token's keys go to column P: the cache must hold P + 1 slots.
    const cap = Math.max(this.capacity, cacheBucket(P + 1, C));
    const pos = Int32Array.from(this.pads, (pad) => P - pad);
    // Slot j < cap holds column j (left-aligned): hidden when it is a row's padding or still empty;
    // slot cap is the new token itself.
    const mask = stepMask(this.pads, P, cap);
    const key = await this.session({ graph: 'step', B, capacity: cap }, () => buildStepGraph(this.shape, B, { cache: 'append', capacity: cap, weights: this.params }), false);
    const r = await this.start();
    const L = this.shape.n_layers;
    const past = Object.fromEntries(Array.from({ length: L }, (_, i) => [[`past_k${i}`, `k${i}`], [`past_v${i}`, `v${i}`]]).flat());
    const out = await r.run(key, {
      feeds: { ids: { data: Int32Array.from(tokens), shape: [B, 1] }, positions: { data: pos, shape: [B, 1] }, mask: { data: mask, shape: [B, 1, 1, cap + 1] } },
      slotFeeds: past,
      ...(cap !== this.capacity ? { resize: this.cacheResize(B, cap) } : {}),
      write: this.cacheWrite(P),
      fetch: ['logits'],
    });
    this.capacity = cap;
    this.len = P + 1;
    return this.rowsOf(out.logits!.data as Float32Array);
  }

  dispose(): void {
    void this.runner?.then((r) => r.dispose());
    this.runner = null;
    this.sessions.clear();
  }

  private rowsOf(flat: Float32Array): Float32Array[] {
    const V = this.shape.vocab_size;
    return Array.from({ length: flat.length / V }, (_, b) => flat.subarray(b * V, (b + 1) * V));
  }

  private cacheNames(): string[] {
    return Array.from({ length: this.shape.n_layers }, (_, i) => [`k${i}`, `v${i}`]).flat();
  }

  private cacheResize(B: number, size: number): Record<string, SlotResize> {
    const { n_heads: H, d_model: d } = this.shape;
    return Object.fromEntries(this.cacheNames().map((n) => [n, { axis: 2, size, shape: [B, H, size, d / H] }]));
  }

  /** Each layer's new keys/values (outputs k<i>, v<i>) into the cache slots of the same names. */
  private cacheWrite(at: number): Record<string, SlotWrite> {
    return Object.fromEntries(this.cacheNames().map((n) => [n, { slot: n, axis: 2, at }]));
  }

  /** Forgets the previous prompt batch's cache (its row count may differ). */
  private dropCache(): void {
    this.capacity = 0;
    this.rows = 0;
  }

  private start(): Promise<OrtRunner> {
    this.runner ??= OrtRunner.start(this.options).then(async (r) => {
      for (const s of towerSpecs(this.shape)) {
        const v = this.params.get(s.name);
        if (!v || v.length !== s.shape.reduce((a, b) => a * b, 1)) throw new Error(`decoder weights: "${s.name}" ${v ? `has ${v.length} values for shape [${s.shape}]` : 'is missing'}`);
        await r.setSlot(weightSlot(s.name), { data: v, shape: s.shape });
      }
      return r;
    });
    return this.runner;
  }

  private async session(what: Record<string, unknown>, build: () => Graph, disk: boolean): Promise<string> {
    const key = graphKey({ ...what, kind: 'tower-decode', shape: this.shape });
    await this.sessions.ensure(await this.start(), key, build, { disk });
    return key;
  }
}

const weightSlot = (name: string) => `w:${name}`;
