/**
 * The engines under test behind one interface, so the benchmark alternates them with one loop:
 * the ONNX engine (onnxruntime, one intra-op thread), a tfjs backend, and the PyTorch peer. Each
 * keeps its model alive between calls (weights, optimizer state, sessions), so a round measures
 * steady-state steps; every side starts from the same weights and batch.
 *
 * tfjs is imported only by tfjsSide(), so an ort-only process (the memory child) never loads it.
 */
import type { TowerShape } from '../../src/config/schema.js';
import { initialState, type HostBatch } from '../../src/engine/engine.js';
import { GraphSessions, graphKey } from '../../src/engine/onnx/graph-cache.js';
import { flatten } from '../../src/engine/onnx/layout.js';
import { OrtTowerDecoder } from '../../src/engine/onnx/ort-decoder.js';
import { OrtEngine } from '../../src/engine/onnx/ort-engine.js';
import { OrtRunner } from '../../src/engine/onnx/runner.js';
import { buildLogitsGraph, inferenceSlots } from '../../src/engine/onnx/tower-graphs.js';
import { generate } from '../../src/decode/sample.js';
import { towerModel } from '../../src/model/tower.js';
import { BATCH, LR, OPT, SEQ, timeCalls } from './common.js';
import type { TorchPeer } from './torch-peer.js';

export interface Timed<R = undefined> {
  times: number[];
  out: R;
}

export interface Side {
  readonly label: string;
  /** `n` timed optimizer steps on the bench batch after `warmup` untimed ones. */
  train(n: number, warmup: number): Promise<Timed>;
  /** Full-sequence logits [B, S, V] of the bench batch (no gradients); out: logits[0, S-1, :]. */
  forward(n: number, warmup: number): Promise<Timed<number[]>>;
  /** Greedy decoding with the KV cache; out: the tokens of the last run. */
  decode(prompts: number[][], newTokens: number, n: number, warmup: number): Promise<Timed<number[][]>>;
  dispose(): void;
}

const greedy = (newTokens: number) => ({ maxNewTokens: newTokens, temperature: 0, topK: 0, stopToken: -1, seed: 0 });
const lastRow = (logits: Float32Array, V: number) => Array.from(logits.subarray((SEQ - 1) * V, SEQ * V));

/** The ONNX engine: OrtEngine for training, the tower's logits graph, OrtTowerDecoder. */
export function ortSide(shape: TowerShape, weights: Map<string, Float32Array>, batch: HostBatch, cacheDir?: string): Side {
  const opts = { providers: ['cpu'] as const, intraOpNumThreads: 1, ...(cacheDir ? { cacheDir } : {}) };
  const model = towerModel(shape);
  let eng: OrtEngine | null = null;
  let step = 1;
  let fwd: { runner: OrtRunner; key: string } | null = null;
  let dec: OrtTowerDecoder | null = null;
  return {
    label: 'ort',
    async train(n, warmup) {
      if (!eng) {
        eng = new OrtEngine(model, OPT, opts);
        await eng.load(initialState(model, weights));
      }
      const e = eng;
      const r = await timeCalls(n, warmup, () => e.trainStep(batch, step++, LR));
      return { times: r.times, out: undefined };
    },
    async forward(n, warmup) {
      if (!fwd) {
        const runner = await OrtRunner.start(opts);
        const sessions = new GraphSessions(cacheDir);
        const key = graphKey({ graph: 'bench-logits', shape, B: BATCH, S: SEQ });
        await sessions.ensure(runner, key, () => buildLogitsGraph(shape, BATCH, SEQ));
        const slots = inferenceSlots(shape);
        await runner.setSlot('params', { data: flatten(slots, weights, 'bench weights'), shape: [slots.reduce((k, s) => k + s.size, 0)] });
        fwd = { runner, key };
      }
      const f = fwd;
      const feeds = { ids: batch.ids!, positions: batch.positions!, mask: batch.mask! };
      const r = await timeCalls(n, warmup, () => f.runner.run(f.key, { feeds, slotFeeds: { params: 'params' }, fetch: ['logits'] }));
      return { times: r.times, out: lastRow(r.last.logits!.data as Float32Array, shape.vocab_size) };
    },
    async decode(prompts, newTokens, n, warmup) {
      dec ??= new OrtTowerDecoder(weights, shape, opts);
      const d = dec;
      const r = await timeCalls(n, warmup, () => generate(d, prompts, greedy(newTokens)));
      return { times: r.times, out: r.last };
    },
    dispose() {
      eng?.dispose();
      fwd?.runner.dispose();
      dec?.dispose();
    },
  };
}

/** A tfjs backend (already initialised by the caller): TfjsEngine, towerForward, TfjsTowerDecoder. */
export async function tfjsSide(backend: string, shape: TowerShape, weights: Map<string, Float32Array>, batch: HostBatch): Promise<Side> {
  const tf = await import('@tensorflow/tfjs');
  const { TfjsEngine, toTensors } = await import('../../src/engine/tfjs-engine.js');
  const { TfjsTowerDecoder } = await import('../../src/engine/tfjs-decoder.js');
  const { tfjsOps } = await import('../../src/engine/tfjs-ops.js');
  const { towerForward, towerSpecs } = await import('../../src/model/tower.js');
  const model = towerModel(shape);
  let eng: InstanceType<typeof TfjsEngine> | null = null;
  let step = 1;
  // Inference weights stay the initial ones, whatever training does to the engine's.
  let params: Record<string, import('@tensorflow/tfjs').Tensor> | null = null;
  const inferenceParams = () =>
    (params ??= Object.fromEntries(towerSpecs(shape).map((s) => [s.name, tf.tensor(weights.get(s.name)!, s.shape)])));
  return {
    label: `tfjs-${backend}`,
    async train(n, warmup) {
      if (!eng) {
        eng = new TfjsEngine(model, OPT);
        await eng.load(initialState(model, weights));
      }
      const e = eng;
      const r = await timeCalls(n, warmup, () => e.trainStep(batch, step++, LR));
      return { times: r.times, out: undefined };
    },
    async forward(n, warmup) {
      const p = inferenceParams();
      const r = await timeCalls(n, warmup, async () => {
        const logits = tf.tidy(() => {
          const t = toTensors(batch);
          return towerForward(tfjsOps, p, shape, { ids: t.ids!, positions: t.positions!, mask: t.mask! }).logits;
        });
        const data = (await logits.data()) as Float32Array;
        logits.dispose();
        return data;
      });
      return { times: r.times, out: lastRow(r.last, shape.vocab_size) };
    },
    async decode(prompts, newTokens, n, warmup) {
      const dec = new TfjsTowerDecoder(inferenceParams(), shape);
      try {
        const r = await timeCalls(n, warmup, () => generate(dec, prompts, greedy(newTokens)));
        return { times: r.times, out: r.last };
      } finally {
        dec.dispose();
      }
    },
    dispose() {
      eng?.dispose();
      if (params) tf.dispose(Object.values(params));
      params = null;
    },
  };
}

/** The PyTorch peer's model `name` (set up by the caller) behind the same interface. */
export function torchSide(peer: TorchPeer, name: string): Side {
  return {
    label: 'pytorch',
    async train(n, warmup) {
      const r = await peer.call<{ times: number[] }>({ cmd: 'train', name, steps: n, warmup });
      return { times: r.times, out: undefined };
    },
    async forward(n, warmup) {
      const r = await peer.call<{ times: number[]; row: number[] }>({ cmd: 'forward', name, steps: n, warmup });
      return { times: r.times, out: r.row };
    },
    async decode(prompts, newTokens, n, warmup) {
      const r = await peer.call<{ times: number[]; tokens: number[][] }>({ cmd: 'decode', name, prompts, new: newTokens, reps: n, warmup });
      return { times: r.times, out: r.tokens };
    },
    dispose() {},
  };
}
