import type { Ops } from './ops.js';
import type { ParamSpec, Params } from '../model/params.js';

/**
 * What the training loop, checkpoints and decoding see of an engine. They never learn which engine
 * they have: the tfjs engine computes eagerly, the ONNX engine runs compiled graphs.
 */

/** A tensor on the host: how batches go in and weights come out. */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}
export type HostBatch = Record<string, HostTensor>;

/** An inference function of a model over its weights: named inputs to named outputs. */
export type ModelFn = <T>(ops: Ops<T>, p: Params<T>, inputs: Record<string, T>) => Record<string, T>;

/**
 * A model as the engines see it: its parameters and a loss written against the tensor-op
 * interface (towers, the zipper, the single decoder), and the inference functions its decoders
 * call (the zipper's prefill and step).
 */
export interface ModelDef {
  readonly kind: string;
  /** What changes the computation without changing the parameter list (compiled-graph keys). */
  readonly variant?: unknown;
  readonly specs: readonly ParamSpec[];
  /** False for frozen parameters: they get no gradient and no optimizer state. */
  trainable(name: string): boolean;
  /** Learning-rate multiplier of a parameter (1 when absent): new layers beside pretrained ones. */
  lrScale?(name: string): number;
  loss<T>(ops: Ops<T>, p: Params<T>, batch: Record<string, T>): T;
  readonly functions?: Readonly<Record<string, ModelFn>>;
}

/**
 * How an engine call exchanges tensors. Kept tensors stay engine-side (worker slots, GPU
 * tensors) between calls: a KV cache fed back step after step without crossing to the host.
 */
export interface CallOptions {
  /** Outputs sent back to the host (default: none). */
  fetch?: readonly string[];
  /** Inputs taken from kept tensors: input name -> kept name. */
  kept?: Readonly<Record<string, string>>;
  /** Outputs kept for later calls: output name -> kept name (replacing what was kept there). */
  keep?: Readonly<Record<string, string>>;
  /**
   * Kept tensors resized along an axis before the call (zeros added at the end, or the end cut):
   * a KV cache grown to the next capacity bucket, so a step graph serves many positions.
   */
  resize?: Readonly<Record<string, { axis: number; size: number }>>;
  /** Outputs written into kept tensors in place after the call, along `axis` from `at`. */
  write?: Readonly<Record<string, { kept: string; axis: number; at: number }>>;
}

/** Parameters and Adam moments (moments only for trainable parameters). */
export interface TrainState {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export interface OptimizerConfig {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  clipNorm: number;
}

export interface TrainEngine {
  /** "tfjs" or "ort". */
  readonly name: string;
  /** The backend or execution provider, for logs. */
  readonly device: string;
  /** Execution providers tried before `device` (the ONNX engine), for the run record. */
  readonly providerAttempts?: readonly { provider: string; ok: boolean; detail: string }[];
  load(state: TrainState): Promise<void>;
  state(): Promise<TrainState>;
  /** One optimizer step (1-based `step`) at learning rate `lr`; loss before the update. */
  trainStep(batch: HostBatch, step: number, lr: number): Promise<{ loss: number; gradNorm: number }>;
  /** Mean loss of a batch without updating anything. */
  evalLoss(batch: HostBatch): Promise<number>;
  /** Runs `model.functions[fn]` on the current weights. */
  call(fn: string, feeds: HostBatch, opts?: CallOptions): Promise<Record<string, HostTensor>>;
  /** Frees every kept tensor. */
  dropKept(): Promise<void>;
  dispose(): void;
}

/** Fresh training state: initial weights and zero moments for the trainable ones. */
export function initialState(model: ModelDef, params: Map<string, Float32Array>): TrainState {
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const s of model.specs) {
    if (!model.trainable(s.name)) continue;
    const n = params.get(s.name)!.length;
    m.set(s.name, new Float32Array(n));
    v.set(s.name, new Float32Array(n));
  }
  return { params, m, v };
}

/**
 * Step-by-step decoding with a KV cache, as decoding code sees it. `prefill` takes prompts of any
 * lengths (left-padded inside) and returns each row's next-token logits; `step` feeds one token
 * per row and returns the logits after it.
 */
export interface StepDecoder {
  readonly vocabSize: number;
  readonly maxLen: number;
  prefill(prompts: readonly number[][]): Promise<Float32Array[]>;
  step(tokens: readonly number[]): Promise<Float32Array[]>;
  dispose(): void;
}
