import type { TowerShape } from '../../config/schema.js';
import { leftPad } from '../../decode/padding.js';
import { MASKED } from '../../model/attention.js';
import type { StepDecoder } from '../engine.js';
import type { Graph } from './graph.js';
import { GraphSessions, graphKey } from './graph-cache.js';
import { flatten } from './layout.js';
import { OrtRunner, type RunnerOptions } from './runner.js';
import { buildPrefillGraph, buildStepGraph, inferenceSlots } from './tower-graphs.js';

export interface OrtDecoderOptions extends RunnerOptions {
  cacheDir?: string;
}

/**
 * A tower's StepDecoder on onnxruntime, with the same conventions as TfjsTowerDecoder: rows
 * left-padded to a common length, each row's positions starting at 0 at its first real token, its
 * padding columns masked out of every later step. Weights and the KV cache (fixed capacity
 * max_len, tower-graphs.ts) stay in the worker; a step sends B tokens and gets B rows of logits.
 */
export class OrtTowerDecoder implements StepDecoder {
  private runner: Promise<OrtRunner> | null = null;
  private readonly sessions: GraphSessions;
  private pads: number[] = [];
  private len = 0;
  private rows = 0;

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
    this.pads = pads;
    const key = await this.session({ graph: 'prefill', B, S }, () => buildPrefillGraph(this.shape, B, S));
    const out = await this.run(key, { ids: { data: ids, shape: [B, S] }, positions: { data: positions, shape: [B, S] }, mask: { data: mask, shape: [B, 1, S, S] } }, false);
    this.len = S;
    this.rows = B;
    return out;
  }

  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    if (!this.rows) throw new Error('step() before prefill()');
    const B = tokens.length;
    if (B !== this.rows) throw new Error(`step() with ${B} tokens after a prefill of ${this.rows} rows`);
    const P = this.len;
    const C = this.shape.max_len;
    if (P >= C) throw new Error(`sequence reached the tower's max_len ${C}`);
    const pos = Int32Array.from(this.pads, (pad) => P - pad);
    // Cache slot j holds column P - C + j (right-aligned); the new token is slot C.
    const mask = new Float32Array(B * (C + 1));
    this.pads.forEach((pad, b) => mask.fill(MASKED, b * (C + 1), b * (C + 1) + C - P + pad));
    const key = await this.session({ graph: 'step', B }, () => buildStepGraph(this.shape, B));
    const out = await this.run(key, { ids: { data: Int32Array.from(tokens), shape: [B, 1] }, positions: { data: pos, shape: [B, 1] }, mask: { data: mask, shape: [B, 1, 1, C + 1] } }, true);
    this.len = P + 1;
    return out;
  }

  dispose(): void {
    void this.runner?.then((r) => r.dispose());
    this.runner = null;
    this.sessions.clear();
  }

  private async run(key: string, feeds: Record<string, { data: Float32Array | Int32Array; shape: number[] }>, withPast: boolean): Promise<Float32Array[]> {
    const r = await this.start();
    const L = this.shape.n_layers;
    const cacheSlots = Object.fromEntries(Array.from({ length: L }, (_, i) => [[`k${i}`, `k${i}`], [`v${i}`, `v${i}`]]).flat());
    const past = withPast ? Object.fromEntries(Array.from({ length: L }, (_, i) => [[`past_k${i}`, `k${i}`], [`past_v${i}`, `v${i}`]]).flat()) : {};
    const out = await r.run(key, { feeds, slotFeeds: { params: 'params', ...past }, store: cacheSlots, fetch: ['logits'] });
    const V = this.shape.vocab_size;
    const flat = out.logits!.data as Float32Array;
    return Array.from({ length: flat.length / V }, (_, b) => flat.slice(b * V, (b + 1) * V));
  }

  private start(): Promise<OrtRunner> {
    this.runner ??= OrtRunner.start(this.options).then(async (r) => {
      const slots = inferenceSlots(this.shape);
      await r.setSlot('params', { data: flatten(slots, this.params, 'decoder weights'), shape: [slots.reduce((n, s) => n + s.size, 0)] });
      return r;
    });
    return this.runner;
  }

  private async session(what: Record<string, unknown>, build: () => Graph): Promise<string> {
    const key = graphKey({ ...what, kind: 'tower-decode', shape: this.shape });
    await this.sessions.ensure(await this.start(), key, build);
    return key;
  }
}
