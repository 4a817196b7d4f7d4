import type { CallOptions, HostBatch, HostTensor, ModelDef, OptimizerConfig, TrainEngine, TrainState } from '../engine.js';
import { adamScalars } from '../../train/adam.js';
import type { Graph } from './graph.js';
import { GraphSessions, graphKey } from './graph-cache.js';
import { batchSpec, flatten, paramLayout, unflatten, type BatchSpec, type ParamLayout } from './layout.js';
import type { SlotResize } from './protocol.js';
import { OrtRunner, type ProviderAttempt, type RunnerOptions } from './runner.js';
import { buildEvalGraph, buildFunctionGraph, buildGradGraph, buildTrainGraph } from './train-graph.js';

export interface OrtEngineOptions extends RunnerOptions {
  /** Keep compiled graphs on disk here (keyed by model, shapes and compiler code); none by default. */
  cacheDir?: string;
}

/**
 * The ONNX engine: the model's loss, its gradients and the shared Adam update compiled into one
 * graph per batch shape and run by onnxruntime in a worker thread. Parameters and moments stay
 * in the worker as flat vectors (layout.ts); a step sends the batch and gets the loss back.
 */
export class OrtEngine implements TrainEngine {
  readonly name = 'ort';
  private runner: Promise<OrtRunner> | null = null;
  private started: OrtRunner | null = null;
  private readonly sessions: GraphSessions;
  private readonly layout: ParamLayout;
  /** Shapes of the tensors kept in worker slots (`kept:<name>`), and of each function graph's outputs. */
  private readonly keptShapes = new Map<string, number[]>();
  private readonly outputShapes = new Map<string, Record<string, number[]>>();

  constructor(
    private readonly model: ModelDef,
    private readonly opt: OptimizerConfig,
    private readonly options: OrtEngineOptions = {},
  ) {
    this.layout = paramLayout(model);
    this.sessions = new GraphSessions(options.cacheDir);
  }

  /** The execution provider ("cpu", "cuda", "webgpu"); "not started" before load(). */
  get device(): string {
    return this.started?.provider ?? 'not started';
  }

  /** Every provider tried, in order, and why the ones before the chosen one failed. */
  get providerAttempts(): readonly ProviderAttempt[] {
    return this.started?.attempts ?? [];
  }

  async load(s: TrainState): Promise<void> {
    const r = await this.start();
    const L = this.layout;
    const zeros = (name: string) => new Float32Array(L.trainable.find((t) => t.name === name)!.size);
    const moments = (m: Map<string, Float32Array>) => new Map(L.trainable.map((t) => [t.name, m.get(t.name) ?? zeros(t.name)]));
    await r.setSlot('params', { data: flatten(L.trainable, s.params, 'training state'), shape: [L.trainSize] });
    await r.setSlot('m', { data: flatten(L.trainable, moments(s.m), 'Adam m'), shape: [L.trainSize] });
    await r.setSlot('v', { data: flatten(L.trainable, moments(s.v), 'Adam v'), shape: [L.trainSize] });
    if (L.frozenSize) await r.setSlot('frozen', { data: flatten(L.frozen, s.params, 'training state'), shape: [L.frozenSize] });
  }

  async state(): Promise<TrainState> {
    const r = await this.start();
    const L = this.layout;
    const read = async (slot: string) => (await r.getSlot(slot)).data as Float32Array;
    const params = unflatten(L.trainable, await read('params'));
    if (L.frozenSize) for (const [k, v] of unflatten(L.frozen, await read('frozen'))) params.set(k, v);
    // In spec order, as the tfjs engine returns them (the flat layout puts matrices first).
    const inSpecOrder = (m: Map<string, Float32Array>) => new Map(this.model.specs.filter((s) => m.has(s.name)).map((s) => [s.name, m.get(s.name)!]));
    return { params: inSpecOrder(params), m: inSpecOrder(unflatten(L.trainable, await read('m'))), v: inSpecOrder(unflatten(L.trainable, await read('v'))) };
  }

  async trainStep(batch: HostBatch, step: number, lr: number): Promise<{ loss: number; gradNorm: number }> {
    const spec = batchSpec(batch);
    const key = await this.session({ variant: 'train', betas: this.opt.betas, clipNorm: this.opt.clipNorm }, spec, () => buildTrainGraph(this.model, this.layout, this.opt, spec));
    const sc = adamScalars({ lr, betas: this.opt.betas, eps: this.opt.eps, weightDecay: this.opt.weightDecay }, step);
    const scalar = (x: number) => ({ data: Float32Array.of(x), shape: [] });
    const out = await this.started!.run(key, {
      feeds: { ...batch, alpha: scalar(sc.alpha), eps: scalar(sc.eps), decay: scalar(sc.decay) },
      slotFeeds: { ...this.paramFeeds(), m: 'm', v: 'v' },
      store: { params_out: 'params', m_out: 'm', v_out: 'v' },
      fetch: ['loss', 'grad_norm'],
    });
    return { loss: out.loss!.data[0]!, gradNorm: out.grad_norm!.data[0]! };
  }

  async evalLoss(batch: HostBatch): Promise<number> {
    const spec = batchSpec(batch);
    const key = await this.session({ variant: 'eval' }, spec, () => buildEvalGraph(this.model, this.layout, spec));
    const out = await this.started!.run(key, { feeds: { ...batch }, slotFeeds: this.paramFeeds(), fetch: ['loss'] });
    return out.loss!.data[0]!;
  }

  /** Loss and the gradient of every trainable parameter at the current weights (parity tests). */
  async gradients(batch: HostBatch): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const spec = batchSpec(batch);
    const key = await this.session({ variant: 'grad' }, spec, () => buildGradGraph(this.model, this.layout, spec));
    const names = this.layout.trainable.map((t) => `grad:${t.name}`);
    const out = await this.started!.run(key, { feeds: { ...batch }, slotFeeds: this.paramFeeds(), fetch: ['loss', ...names] });
    return { loss: out.loss!.data[0]!, grads: new Map(this.layout.trainable.map((t) => [t.name, out[`grad:${t.name}`]!.data as Float32Array])) };
  }

  async call(fn: string, feeds: HostBatch, o: CallOptions = {}): Promise<Record<string, HostTensor>> {
    const resize: Record<string, SlotResize> = {};
    for (const [name, r] of Object.entries(o.resize ?? {})) {
      const shape = this.keptShapes.get(name);
      if (!shape) throw new Error(`${fn}: no kept tensor "${name}" to resize`);
      const grown = shape.map((d, i) => (i === r.axis ? r.size : d));
      resize[keptSlot(name)] = { axis: r.axis, size: r.size, shape: grown };
      this.keptShapes.set(name, grown);
    }
    const spec = batchSpec(feeds);
    const kept = o.kept ?? {};
    for (const [input, name] of Object.entries(kept)) {
      const shape = this.keptShapes.get(name);
      if (!shape) throw new Error(`${fn}: no kept tensor "${name}" for input "${input}"`);
      spec[input] = { shape, dtype: 'float32' };
    }
    let shapes: Record<string, number[]> | undefined;
    // Kept out of the disk cache: the output shapes come from recording the graph in this process.
    const key = await this.session({ variant: 'fn', fn }, spec, () => {
      const g = buildFunctionGraph(this.model, this.layout, fn, spec);
      shapes = g.outputShapes();
      return g;
    }, false);
    if (shapes) this.outputShapes.set(key, shapes);
    const keep = o.keep ?? {};
    const out = await this.started!.run(key, {
      feeds: { ...feeds },
      slotFeeds: { ...this.paramFeeds(), ...Object.fromEntries(Object.entries(kept).map(([i, n]) => [i, keptSlot(n)])) },
      store: Object.fromEntries(Object.entries(keep).map(([out, n]) => [out, keptSlot(n)])),
      fetch: [...(o.fetch ?? [])],
      ...(Object.keys(resize).length ? { resize } : {}),
      ...(o.write ? { write: Object.fromEntries(Object.entries(o.write).map(([out, w]) => [out, { slot: keptSlot(w.kept), axis: w.axis, at: w.at }])) } : {}),
    });
    for (const [output, name] of Object.entries(keep)) {
      const shape = this.outputShapes.get(key)?.[output];
      if (!shape) throw new Error(`${fn} has no output "${output}" to keep`);
      this.keptShapes.set(name, shape);
    }
    return out;
  }

  async dropKept(): Promise<void> {
    const r = await this.start();
    for (const name of this.keptShapes.keys()) await r.setSlot(keptSlot(name), { data: new Float32Array(0), shape: [0] });
    this.keptShapes.clear();
  }

  dispose(): void {
    this.started?.dispose();
    this.started = null;
    this.runner = null;
    this.sessions.clear();
  }

  private paramFeeds(): Record<string, string> {
    return this.layout.frozenSize ? { params: 'params', frozen: 'frozen' } : { params: 'params' };
  }

  private start(): Promise<OrtRunner> {
    this.runner ??= OrtRunner.start(this.options).then((r) => (this.started = r));
    return this.runner;
  }

  /** The session for a graph variant and batch shape, compiled and loaded on first use. */
  private async session(variant: Record<string, unknown>, spec: BatchSpec, build: () => Graph, disk = true): Promise<string> {
    const m = this.model;
    const key = graphKey({ ...variant, kind: m.kind, model: m.variant ?? null, specs: m.specs.map((s) => [s.name, s.shape, m.trainable(s.name)]), batch: spec });
    await this.sessions.ensure(await this.start(), key, build, { disk });
    return key;
  }
}

const keptSlot = (name: string) => `kept:${name}`;
