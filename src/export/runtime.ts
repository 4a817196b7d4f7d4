import * as ort from 'onnxruntime-node';
import type { TowerShape } from '../config/schema.js';
import type { StepDecoder } from '../engine/engine.js';
import { MASKED } from '../model/attention.js';
import { readExportMetadata } from './metadata.js';

/**
 * A StepDecoder over an exported file, driven exactly as a user outside zipper would drive it
 * (the README's Python loop does the same): a plain in-process InferenceSession, prompts fed one
 * token at a time through the step graph, the KV cache carried from each call's outputs to the
 * next call's inputs. It follows OrtTowerDecoder's conventions (left-padded rows, positions from
 * 0 at a row's first real token), so generate() runs on it unchanged.
 */
export class ExportedTowerDecoder implements StepDecoder {
  private past: Record<string, ort.Tensor> = {};
  private pads: number[] = [];
  private len = 0;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly shape: TowerShape,
    readonly batch: number,
  ) {}

  /** Opens an export file, checking its metadata first. */
  static async open(file: string): Promise<ExportedTowerDecoder> {
    const meta = readExportMetadata(file);
    return ExportedTowerDecoder.create(file, meta.config, meta.kvCache.batch);
  }

  /** From bytes not yet written (verification) or a path whose layout the caller knows. */
  static async create(model: string | Uint8Array, shape: TowerShape, batch: number): Promise<ExportedTowerDecoder> {
    const o: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 };
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, o) : await ort.InferenceSession.create(model, o);
    return new ExportedTowerDecoder(session, shape, batch);
  }

  get vocabSize(): number {
    return this.shape.vocab_size;
  }
  get maxLen(): number {
    return this.shape.max_len;
  }

  async prefill(prompts: readonly number[][]): Promise<Float32Array[]> {
    if (prompts.length !== this.batch) throw new Error(`this export decodes ${this.batch} row(s) at a time (static shapes), got ${prompts.length} prompts`);
    const S = Math.max(...prompts.map((p) => p.length));
    if (S === 0) throw new Error("every prompt needs at least one token (the tower's <bos>)");
    if (S > this.maxLen) throw new Error(`a prompt of ${S} tokens is longer than the tower's max_len ${this.maxLen}`);
    this.pads = prompts.map((p) => S - p.length);
    const { n_heads: H, d_model, max_len: C } = this.shape;
    const zeros = () => new ort.Tensor('float32', new Float32Array(this.batch * H * C * (d_model / H)), [this.batch, H, C, d_model / H]);
    this.past = {};
    for (let i = 0; i < this.shape.n_layers; i++) [this.past[`past_k${i}`], this.past[`past_v${i}`]] = [zeros(), zeros()];
    this.len = 0;
    let logits: Float32Array[] = [];
    for (let col = 0; col < S; col++) logits = await this.feed(prompts.map((p, b) => (col < this.pads[b]! ? 0 : p[col - this.pads[b]!]!)));
    return logits;
  }

  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    if (!this.pads.length) throw new Error('step() before prefill()');
    if (tokens.length !== this.batch) throw new Error(`step() with ${tokens.length} tokens; this export decodes ${this.batch} row(s)`);
    return this.feed(tokens);
  }

  dispose(): void {
    void this.session.release();
  }

  /** One call of the step graph for the token in column `len` of every row. */
  private async feed(tokens: readonly number[]): Promise<Float32Array[]> {
    const B = this.batch;
    const C = this.maxLen;
    const P = this.len;
    if (P >= C) throw new Error(`sequence reached the tower's max_len ${C}`);
    // Slot j < C holds column P - C + j: hidden when that column is empty or a row's padding.
    const mask = new Float32Array(B * (C + 1));
    this.pads.forEach((pad, b) => mask.fill(MASKED, b * (C + 1), b * (C + 1) + Math.min(C, C - P + pad)));
    const out = await this.session.run({
      ids: new ort.Tensor('int32', Int32Array.from(tokens), [B, 1]),
      positions: new ort.Tensor('int32', Int32Array.from(this.pads, (pad) => Math.max(0, P - pad)), [B, 1]),
      mask: new ort.Tensor('float32', mask, [B, 1, 1, C + 1]),
      ...this.past,
    });
    for (let i = 0; i < this.shape.n_layers; i++) [this.past[`past_k${i}`], this.past[`past_v${i}`]] = [out[`k${i}`]!, out[`v${i}`]!];
    this.len = P + 1;
    const V = this.vocabSize;
    const flat = out.logits!.data as Float32Array;
    return Array.from({ length: B }, (_, b) => flat.slice(b * V, (b + 1) * V));
  }
}
