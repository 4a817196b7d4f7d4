import type { TowerShape } from '../config/schema.js';
import { describeBackend, initBackend, isBackendName, tf, type BackendChoice } from './backends.js';
import type { ModelDef, OptimizerConfig, StepDecoder, TrainEngine } from './engine.js';
import { OrtTowerDecoder } from './onnx/ort-decoder.js';
import { OrtEngine } from './onnx/ort-engine.js';
import type { ProviderName } from './onnx/runner.js';
import { TfjsTowerDecoder } from './tfjs-decoder.js';
import { TfjsEngine } from './tfjs-engine.js';

export type EngineRequest = 'auto' | 'tfjs' | 'ort';

/** onnxruntime settings (config key `ort`). */
export interface OrtSettings {
  threads: number;
  providers: readonly ProviderName[];
  /** onnxruntime's per-session memory arena (default on). */
  memory_arena?: boolean;
}

/**
 * onnxruntime settings for decoding a fine-tuned model: prefill graphs come in many prompt
 * lengths, so no per-session arena (each would keep its peak; runner.ts).
 */
export const FUSED_DECODE_ORT: OrtSettings = { threads: 1, providers: ['cuda', 'webgpu', 'cpu'], memory_arena: false };

export interface EngineChoice {
  engine: 'tfjs' | 'ort';
  /** The tfjs backend; null for the ONNX engine. */
  backend: BackendChoice | null;
  reason: string;
  ort: OrtSettings;
}

/**
 * Engine and backend selection in one place. An explicit choice (flag or config; the
 * ZIPPER_ENGINE / ZIPPER_BACKEND environment variables when the config says auto) comes first.
 * Otherwise tfjs when it has a GPU backend (tfjs-node-gpu, or WebGPU on a hardware adapter), else
 * the ONNX engine: on a CPU it trains about 8x faster than tfjs-wasm (`npm run bench`).
 */
export async function chooseEngine(engine: EngineRequest, backend: string, ort: OrtSettings): Promise<EngineChoice> {
  const e = engine === 'auto' ? ((process.env.ZIPPER_ENGINE as EngineRequest | undefined) ?? 'auto') : engine;
  const b = backend === 'auto' ? (process.env.ZIPPER_BACKEND ?? 'auto') : backend;
  if (e !== 'auto' && e !== 'tfjs' && e !== 'ort') throw new Error(`unknown engine "${e}" (expected auto, tfjs or ort)`);
  if (b !== 'auto' && !isBackendName(b)) throw new Error(`unknown backend "${b}" (expected auto, tensorflow, webgpu, wasm or cpu)`);
  if (e === 'ort') {
    if (b !== 'auto') throw new Error(`backend "${b}" is a tfjs backend; the ONNX engine picks execution providers (config ort.providers)`);
    return { engine: 'ort', backend: null, reason: 'engine ort requested', ort };
  }
  // Naming a tfjs backend implies the tfjs engine.
  if (e === 'tfjs' || b !== 'auto') return { engine: 'tfjs', backend: await initBackend(b), reason: e === 'tfjs' ? 'engine tfjs requested' : `backend ${b} requested`, ort };
  const choice = await initBackend('auto');
  if (isGpuBackend(choice)) return { engine: 'tfjs', backend: choice, reason: `auto: tfjs has a GPU backend (${choice.name})`, ort };
  return { engine: 'ort', backend: null, reason: `auto: no GPU backend for tfjs (best: ${choice.name}), so the ONNX engine`, ort };
}

function isGpuBackend(c: BackendChoice): boolean {
  if (c.name === 'webgpu') return !c.software;
  return c.name === 'tensorflow' && c.attempts.some((a) => a.ok && a.detail.includes('tfjs-node-gpu'));
}

export function describeEngine(c: EngineChoice, started?: TrainEngine): string {
  if (c.engine === 'tfjs') return `engine tfjs (${c.reason}); ${describeBackend(c.backend!)}`;
  const provider = started ? `; onnxruntime provider ${started.device}` : '';
  return `engine ort (${c.reason})${provider}, ${c.ort.threads} intra-op thread(s)`;
}

export function createTrainEngine(c: EngineChoice, model: ModelDef, opt: OptimizerConfig): TrainEngine {
  return c.engine === 'ort' ? new OrtEngine(model, opt, { providers: c.ort.providers, intraOpNumThreads: c.ort.threads, memoryArena: c.ort.memory_arena ?? true }) : new TfjsEngine(model, opt);
}

export function createTowerDecoder(c: EngineChoice, params: ReadonlyMap<string, Float32Array>, shape: TowerShape, specs: ModelDef['specs']): StepDecoder {
  if (c.engine === 'ort') return new OrtTowerDecoder(params, shape, { providers: c.ort.providers, intraOpNumThreads: c.ort.threads });
  return new TfjsTowerDecoder(Object.fromEntries(specs.map((s) => [s.name, tf.tensor(params.get(s.name)!, s.shape)])), shape);
}
