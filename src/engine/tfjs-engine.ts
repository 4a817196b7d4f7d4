import * as tf from '@tensorflow/tfjs';
import type { CallOptions, HostBatch, HostTensor, ModelDef, OptimizerConfig, TrainEngine, TrainState } from './engine.js';
import { tfjsOps } from './tfjs-ops.js';
import { adamScalars, adamUpdate, clipByGlobalNorm, scaleAdam } from '../train/adam.js';

/**
 * The tfjs engine: the model's loss computed eagerly on the current TensorFlow.js backend, tfjs's
 * autodiff for gradients, and the shared Adam definition for the update. The GPU path and the
 * reference the ONNX engine is checked against.
 */
export class TfjsEngine implements TrainEngine {
  readonly name = 'tfjs';
  readonly device: string;
  private vars = new Map<string, tf.Variable>();
  private m = new Map<string, tf.Tensor>();
  private v = new Map<string, tf.Tensor>();
  private kept = new Map<string, tf.Tensor>();

  constructor(
    private readonly model: ModelDef,
    private readonly opt: OptimizerConfig,
  ) {
    this.device = tf.getBackend();
  }

  async load(s: TrainState): Promise<void> {
    this.disposeState();
    for (const spec of this.model.specs) {
      const data = s.params.get(spec.name);
      if (!data) throw new Error(`training state has no parameter "${spec.name}"`);
      this.vars.set(spec.name, tf.variable(tf.tensor(data, spec.shape), this.model.trainable(spec.name), `p/${spec.name}/${uniq++}`));
      if (this.model.trainable(spec.name)) {
        this.m.set(spec.name, tf.tensor(s.m.get(spec.name) ?? new Float32Array(data.length), spec.shape));
        this.v.set(spec.name, tf.tensor(s.v.get(spec.name) ?? new Float32Array(data.length), spec.shape));
      }
    }
  }

  async state(): Promise<TrainState> {
    const read = async (src: Map<string, tf.Tensor>) => {
      const out = new Map<string, Float32Array>();
      for (const [k, t] of src) out.set(k, (await t.data()) as Float32Array);
      return out;
    };
    return { params: await read(this.vars), m: await read(this.m), v: await read(this.v) };
  }

  async trainStep(batch: HostBatch, step: number, lr: number): Promise<{ loss: number; gradNorm: number }> {
    const ops = tfjsOps;
    const names = [...this.m.keys()];
    const sc = adamScalars({ lr, betas: this.opt.betas, eps: this.opt.eps, weightDecay: this.opt.weightDecay }, step);
    const [loss, norm] = tf.tidy(() => {
      const inputs = toTensors(batch);
      const params = Object.fromEntries(this.vars) as Record<string, tf.Tensor>;
      const { value, grads } = tf.variableGrads(() => this.model.loss(ops, params, inputs) as tf.Scalar, names.map((n) => this.vars.get(n)!));
      const gl = names.map((n) => grads[this.vars.get(n)!.name]!);
      const clip = clipByGlobalNorm(ops, gl, this.opt.clipNorm);
      const s = { alpha: tf.scalar(sc.alpha), eps: tf.scalar(sc.eps), decay: tf.scalar(sc.decay) };
      names.forEach((n, i) => {
        const g = clip.scale ? tf.mul(gl[i]!, clip.scale) : gl[i]!;
        const p = this.vars.get(n)!;
        const u = adamUpdate(ops, this.opt.betas, scaleAdam(ops, s, this.model.lrScale?.(n) ?? 1), p, g, this.m.get(n)!, this.v.get(n)!, p.rank >= 2);
        p.assign(u.p);
        this.m.get(n)!.dispose();
        this.v.get(n)!.dispose();
        this.m.set(n, tf.keep(u.m));
        this.v.set(n, tf.keep(u.v));
      });
      return [value, clip.norm];
    });
    const [l, g] = [(await loss.data())[0]!, (await norm.data())[0]!];
    loss.dispose();
    norm.dispose();
    return { loss: l, gradNorm: g };
  }

  async evalLoss(batch: HostBatch): Promise<number> {
    const loss = tf.tidy(() => this.model.loss(tfjsOps, Object.fromEntries(this.vars) as Record<string, tf.Tensor>, toTensors(batch)));
    const v = (await loss.data())[0]!;
    loss.dispose();
    return v;
  }

  async call(fn: string, feeds: HostBatch, o: CallOptions = {}): Promise<Record<string, HostTensor>> {
    const f = this.model.functions?.[fn];
    if (!f) throw new Error(`${this.model.kind} has no function "${fn}"`);
    for (const [name, r] of Object.entries(o.resize ?? {})) {
      const t = this.kept.get(name);
      if (!t) throw new Error(`${fn}: no kept tensor "${name}" to resize`);
      const have = t.shape[r.axis]!;
      if (have === r.size) continue;
      const resized = tf.tidy(() => {
        if (r.size < have) return tf.slice(t, t.shape.map(() => 0), t.shape.map((d, i) => (i === r.axis ? r.size : d)));
        return tf.concat([t, tf.zeros(t.shape.map((d, i) => (i === r.axis ? r.size - have : d)))], r.axis);
      });
      t.dispose();
      this.kept.set(name, resized);
    }
    const outs = tf.tidy(() => {
      const inputs = toTensors(feeds);
      for (const [input, name] of Object.entries(o.kept ?? {})) {
        const t = this.kept.get(name);
        if (!t) throw new Error(`${fn}: no kept tensor "${name}" for input "${input}"`);
        inputs[input] = t;
      }
      return f(tfjsOps, Object.fromEntries(this.vars) as Record<string, tf.Tensor>, inputs);
    });
    const result: Record<string, HostTensor> = {};
    for (const name of o.fetch ?? []) {
      const t = outs[name];
      if (!t) throw new Error(`${fn} has no output "${name}"`);
      result[name] = { data: (await t.data()) as Float32Array | Int32Array, shape: [...t.shape] };
    }
    const keep = o.keep ?? {};
    for (const [output, name] of Object.entries(keep)) {
      const t = outs[output];
      if (!t) throw new Error(`${fn} has no output "${output}" to keep`);
      const old = this.kept.get(name);
      this.kept.set(name, t);
      if (old && old !== t) old.dispose();
    }
    for (const [output, w] of Object.entries(o.write ?? {})) {
      const src = outs[output];
      const t = this.kept.get(w.kept);
      if (!src || !t) throw new Error(`${fn}: cannot write output "${output}" into kept "${w.kept}"`);
      const n = src.shape[w.axis]!;
      const written = tf.tidy(() => {
        const part = (from: number, size: number) => tf.slice(t, t.shape.map((_, i) => (i === w.axis ? from : 0)), t.shape.map((d, i) => (i === w.axis ? size : d)));
        return tf.concat([part(0, w.at), src, part(w.at + n, t.shape[w.axis]! - w.at - n)], w.axis);
      });
      t.dispose();
      this.kept.set(w.kept, written);
    }
    const keptNow = new Set(this.kept.values());
    for (const t of Object.values(outs)) if (!keptNow.has(t)) t.dispose();
    return result;
  }

  async dropKept(): Promise<void> {
    for (const t of this.kept.values()) t.dispose();
    this.kept.clear();
  }

  /** The current weights as tfjs tensors, for decoding without a copy. */
  paramTensors(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.vars);
  }

  dispose(): void {
    void this.dropKept();
    this.disposeState();
  }

  private disposeState(): void {
    for (const t of [...this.vars.values(), ...this.m.values(), ...this.v.values()]) t.dispose();
    this.vars.clear();
    this.m.clear();
    this.v.clear();
  }
}

// tfjs variable names are global per process; engines created in one process must not collide.
let uniq = 0;

export function toTensors(batch: HostBatch): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(batch)) out[k] = tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32');
  return out;
}
