import { describeBackend, initBackend, isBackendName, type BackendChoice } from './backends.js';

export type EngineRequest = 'auto' | 'tfjs' | 'ort';

export interface EngineChoice {
  engine: 'tfjs';
  backend: BackendChoice;
  reason: string;
}

/**
 * Engine and backend selection in one place. An explicit choice (flag or config; the
 * ZIPPER_ENGINE / ZIPPER_BACKEND environment variables when the config says auto) comes first,
 * else the best available. Every run logs what it got and why (`describeEngine`).
 */
export async function chooseEngine(engine: EngineRequest, backend: string): Promise<EngineChoice> {
  const e = engine === 'auto' ? ((process.env.ZIPPER_ENGINE as EngineRequest | undefined) ?? 'auto') : engine;
  const b = backend === 'auto' ? (process.env.ZIPPER_BACKEND ?? 'auto') : backend;
  if (e !== 'auto' && e !== 'tfjs' && e !== 'ort') throw new Error(`unknown engine "${e}" (expected auto, tfjs or ort)`);
  if (b !== 'auto' && !isBackendName(b)) throw new Error(`unknown backend "${b}" (expected auto, tensorflow, webgpu, wasm or cpu)`);
  if (e === 'ort') throw new Error('the ONNX engine (--engine ort) is not in this version yet (issue 9); use --engine tfjs');
  const choice = await initBackend(b);
  const reason = e === 'tfjs' ? 'engine tfjs requested' : 'auto: tfjs is the only engine in this version';
  return { engine: 'tfjs', backend: choice, reason };
}

export function describeEngine(c: EngineChoice): string {
  return `engine ${c.engine} (${c.reason}); ${describeBackend(c.backend)}`;
}
