import type { Modality } from '../config/schema.js';
import { initialState, type TrainEngine } from '../engine/engine.js';
import { createTrainEngine, type EngineChoice } from '../engine/select.js';
import { towerText } from '../data/aligned.js';
import { wrap, type Segment } from '../data/zip-batch.js';
import type { FusedRun } from '../train/fused.js';
import type { BeamOptions } from './beam.js';
import { roundUp, type DecodeOptions, type DecodeOutput } from './modalities.js';
import { decodeSingle } from './single-decoder.js';
import { decodeZipped } from './zipper-decoder.js';

/**
 * A fine-tuned model (zipper or single decoder) ready to decode: ASR (speech units in, text out)
 * and TTS (text in, speech units out), batched, with length limits proportional to the input
 * (SCALE.md: looping outputs otherwise dominate evaluation time).
 */
export interface LengthLimits {
  /** ASR: at most base + perUnit * speech units text tokens. */
  text: { base: number; perInput: number };
  /** TTS: at most base + perToken * text tokens speech units. */
  speech: { base: number; perInput: number };
}

/** About 0.15 BPE tokens per unit and 6 units per BPE token on the built-in corpus: twice that. */
export const DEFAULT_LIMITS: LengthLimits = { text: { base: 8, perInput: 0.35 }, speech: { base: 16, perInput: 12 } };

export class FusedDecoder {
  private constructor(
    readonly run: FusedRun,
    private readonly engine: TrainEngine,
  ) {}

  static async open(run: FusedRun, choice: EngineChoice): Promise<FusedDecoder> {
    // Decoding needs no optimizer: the engine's Adam state stays empty (moments of zeros).
    const engine = createTrainEngine(choice, run.model, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clipNorm: 0 });
    await engine.load(initialState(run.model, run.params));
    return new FusedDecoder(run, engine);
  }

  get device(): string {
    return this.engine.device;
  }

  /** Generic decoding: prompts as segments, outputs in order. */
  decode(prompts: readonly (readonly Segment[])[], o: DecodeOptions & { useCache?: boolean }): Promise<DecodeOutput[]> {
    const j = this.run.json;
    if (j.architecture === 'zipper') return decodeZipped(this.engine, j.specials, prompts, { ...o, shape: j.zipper!, useCache: o.useCache ?? true });
    return decodeSingle(this.engine, j.specials, prompts, { ...o, shape: j.single!.shape, vocab: j.single!.vocab });
  }

  /** Text from speech units (unit ids, offset included), in rows of `batch`. */
  async transcribe(units: readonly (readonly number[])[], o: BeamOptions & { batch: number; limits?: LengthLimits; useCache?: boolean }): Promise<{ ids: number[]; text: string }[]> {
    const out = await this.inBatches(units, 'speech', 'text', o);
    return Promise.all(out.map(async (ids) => ({ ids, text: await this.run.text.decode(ids) })));
  }

  /** Speech unit ids from texts (as written: cased for the text tower as in training). */
  async synthesize(texts: readonly string[], o: BeamOptions & { batch: number; limits?: LengthLimits; useCache?: boolean }): Promise<number[][]> {
    const ids = await this.run.text.encodeBatch(texts.map((t) => towerText(t, this.run.json.text_case)));
    return this.inBatches(ids, 'text', 'speech', o);
  }

  private async inBatches(inputs: readonly (readonly number[])[], from: Modality, to: Modality, o: BeamOptions & { batch: number; limits?: LengthLimits; useCache?: boolean }): Promise<number[][]> {
    const lim = (o.limits ?? DEFAULT_LIMITS)[to];
    const sp = this.run.json.specials;
    // Similar lengths together: less padding, fewer compiled shapes.
    const order = inputs.map((_, i) => i).sort((a, b) => inputs[a]!.length - inputs[b]!.length);
    const out: number[][] = new Array(inputs.length);
    for (let s = 0; s < order.length; s += o.batch) {
      const idx = order.slice(s, s + o.batch);
      const prompts = idx.map((i) => [{ modality: from, tokens: wrap(from, inputs[i]!, sp), target: false }]);
      // Every row is padded to the batch's longest prompt, so the room left is that prompt's.
      const room = this.room(to, Math.max(...prompts.map((p) => p[0]!.tokens.length)));
      const got = await this.decode(prompts, {
        ...o,
        outputs: [to],
        maxNew: (_m, p) => Math.min(Math.floor(lim.base + lim.perInput * (p[0]!.tokens.length - 2)), room),
      });
      idx.forEach((i, k) => (out[i] = got[k]![to]!));
    }
    return out;
  }

  /**
   * New tokens that fit after the begin token of `to`: the active sequence is left-padded to a
   * multiple of 8 columns and may not outgrow its tower's (or the single decoder's) max_len.
   */
  private room(to: Modality, promptTokens: number): number {
    const j = this.run.json;
    const maxLen = j.architecture === 'zipper' ? j.zipper![to].max_len : j.single!.shape.max_len;
    const start = j.architecture === 'zipper' ? 1 : promptTokens + 1;
    return Math.max(0, maxLen - roundUp(start, maxLen));
  }

  dispose(): void {
    this.engine.dispose();
  }
}
