import type { Ops } from '../ops.js';
import { Emitter } from './emit.js';
import { MS_DOMAIN, f, type Graph, type Sym } from './graph.js';

/**
 * The tensor-op interface recorded into a static-shape ONNX graph instead of computed. Each op
 * emits its forward nodes and, when an input depends on a tracked (trainable) value, puts its
 * backward rule on the tape right beside it (tinygrad's layout): one rule per op, emitting ONNX
 * nodes, that maps the output's gradient to the inputs' gradients. Composite ops (layerNorm, gelu,
 * softmax, crossEntropy, embedding) have hand-written rules that reuse forward by-products
 * (ENGINE.md). `gradients()` in autodiff.ts walks the tape backwards.
 */

/** Gradients of one op's inputs from its output's gradient; `need[i]` false means skip input i. */
export type BackwardRule = (dy: Sym, need: readonly boolean[]) => (Sym | null)[];

export interface TapeEntry {
  out: Sym;
  inputs: readonly Sym[];
  backward: BackwardRule;
}

export interface RecorderOptions {
  /**
   * An inference graph: nothing is differentiated, so ops may record as onnxruntime's fused
   * forward-only kernels (com.microsoft Gelu, which the CPU build has no gradient kernel for)
   * instead of the chains the backward rules reuse. The same model code, a different recording.
   */
  inference?: boolean;
}

export class Recorder implements Ops<Sym> {
  readonly name = 'onnx';
  readonly e: Emitter;
  readonly tape: TapeEntry[] = [];
  readonly inference: boolean;
  private tracked = new Set<string>();
  private taping = true;

  constructor(
    readonly g: Graph,
    opts: RecorderOptions = {},
  ) {
    this.e = new Emitter(g);
    this.inference = opts.inference ?? false;
  }

  /** Marks a leaf (a trainable parameter) as something gradients are wanted for. */
  track(s: Sym): Sym {
    if (this.inference) throw new Error(`an inference recording tracks no gradients (tried ${s.name})`);
    this.tracked.add(s.name);
    return s;
  }

  needsGrad(s: Sym): boolean {
    return this.tracked.has(s.name);
  }

  /** Records `fn`'s ops without a tape: the optimizer's update is never differentiated. */
  withoutTape<R>(fn: () => R): R {
    const was = this.taping;
    this.taping = false;
    try {
      return fn();
    } finally {
      this.taping = was;
    }
  }

  private rec(out: Sym, inputs: readonly Sym[], backward: BackwardRule): Sym {
    // An emitter that returned its input unchanged (a no-op reshape) made no node: nothing to tape.
    if (!this.taping || inputs.includes(out) || !inputs.some((s) => this.needsGrad(s))) return out;
    this.tracked.add(out.name);
    this.tape.push({ out, inputs, backward });
    return out;
  }

  shape(x: Sym): readonly number[] {
    return x.shape;
  }

  constant(data: Float32Array | Int32Array, shape: readonly number[]): Sym {
    return this.g.init(data, shape);
  }

  scalar(value: number): Sym {
    return this.g.scalar(value);
  }

  /* --- elementwise (broadcasting: gradients are summed back to each input's shape) ------------ */

  add(a: Sym, b: Sym): Sym {
    const e = this.e;
    return this.rec(e.add(a, b), [a, b], (dy, need) => [need[0] ? e.reduceTo(dy, a.shape) : null, need[1] ? e.reduceTo(dy, b.shape) : null]);
  }

  sub(a: Sym, b: Sym): Sym {
    const e = this.e;
    return this.rec(e.sub(a, b), [a, b], (dy, need) => [need[0] ? e.reduceTo(dy, a.shape) : null, need[1] ? e.neg(e.reduceTo(dy, b.shape)) : null]);
  }

  mul(a: Sym, b: Sym): Sym {
    const e = this.e;
    // (A B) * c as one FusedMatMul with alpha c. Also when differentiating: the rule below needs
    // only the factors, never the unscaled product, which then is computed nowhere.
    const y = this.scaledProduct(a, b) ?? this.scaledProduct(b, a) ?? e.mul(a, b);
    return this.rec(y, [a, b], (dy, need) => [
      need[0] ? e.reduceTo(e.mul(dy, b), a.shape) : null,
      need[1] ? e.reduceTo(e.mul(dy, a), b.shape) : null,
    ]);
  }

  div(a: Sym, b: Sym): Sym {
    const e = this.e;
    const y = e.div(a, b);
    return this.rec(y, [a, b], (dy, need) => {
      const q = e.div(dy, b);
      // d(a/b)/db = -y/b: reuses the forward's quotient instead of a/b^2.
      return [need[0] ? e.reduceTo(q, a.shape) : null, need[1] ? e.reduceTo(e.neg(e.mul(q, y)), b.shape) : null];
    });
  }

  maximum(a: Sym, b: Sym): Sym {
    const e = this.e;
    return this.rec(e.binary('Max', a, b), [a, b], (dy, need) => {
      // Ties send the gradient to `a`, as tfjs's Maximum gradient does.
      const ge = e.compare('GreaterOrEqual', a, b);
      const zero = this.g.scalar(0);
      return [need[0] ? e.reduceTo(e.where(ge, dy, zero), a.shape) : null, need[1] ? e.reduceTo(e.where(ge, zero, dy), b.shape) : null];
    });
  }

  sqrt(x: Sym): Sym {
    const e = this.e;
    const y = e.unary('Sqrt', x);
    return this.rec(y, [x], (dy) => [e.mul(e.div(dy, y), this.g.scalar(0.5))]);
  }

  /** Exact GELU via Erf (opset 17 has no Gelu); the backward reuses the forward's Phi(x). */
  gelu(x: Sym): Sym {
    const e = this.e;
    if (this.inference) return e.gelu(x);
    const t = e.mul(x, this.g.scalar(Math.SQRT1_2));
    const cdf = e.mul(e.add(e.unary('Erf', t), this.g.scalar(1)), this.g.scalar(0.5));
    const y = e.mul(x, cdf);
    return this.rec(y, [x], (dy) => {
      // d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-t^2) / sqrt(2 pi) with t = x / sqrt 2;
      // the constant goes into the exponent, exp(ln(1 / sqrt(2 pi)) - t^2): one pass fewer.
      const pdf = e.unary('Exp', e.sub(this.g.scalar(-0.5 * Math.log(2 * Math.PI)), e.mul(t, t)));
      return [e.mul(dy, e.add(cdf, e.mul(x, pdf)))];
    });
  }

  relu(x: Sym): Sym {
    const e = this.e;
    return this.rec(e.unary('Relu', x), [x], (dy) => [e.where(e.compare('Greater', x, this.g.scalar(0)), dy, this.g.scalar(0))]);
  }

  tanh(x: Sym): Sym {
    const e = this.e;
    const y = e.unary('Tanh', x);
    return this.rec(y, [x], (dy) => [e.mul(dy, e.sub(this.g.scalar(1), e.mul(y, y)))]);
  }

  /* --- layout --------------------------------------------------------------------------------- */

  reshape(x: Sym, shape: readonly number[]): Sym {
    const e = this.e;
    return this.rec(e.reshape(x, shape), [x], (dy) => [e.reshape(dy, x.shape)]);
  }

  transpose(x: Sym, perm: readonly number[]): Sym {
    const e = this.e;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.rec(e.transpose(x, perm), [x], (dy) => [e.transpose(dy, inverse)]);
  }

  concat(xs: readonly Sym[], axis: number): Sym {
    const e = this.e;
    const ax = axis < 0 ? axis + xs[0]!.rank : axis;
    return this.rec(e.concat(xs, ax), xs, (dy, need) => e.split(dy, ax, xs.map((x) => x.shape[ax]!)).map((d, i) => (need[i] ? d : null)));
  }

  slice(x: Sym, axis: number, begin: number, size: number): Sym {
    const e = this.e;
    const ax = axis < 0 ? axis + x.rank : axis;
    return this.rec(e.slice(x, ax, begin, size), [x], (dy) => [e.pad(dy, ax, begin, x.shape[ax]! - begin - size)]);
  }

  /* --- products and reductions ---------------------------------------------------------------- */

  matMul(a: Sym, b: Sym, transposeA = false, transposeB = false): Sym {
    const e = this.e;
    return this.rec(e.matMul(a, b, transposeA, transposeB), [a, b], (dy, need) => {
      // C = op(A) op(B); each case picks flags so no explicit Transpose is emitted.
      const ta = transposeA;
      const tb = transposeB;
      const da = !need[0] ? null : ta ? e.matMul(b, dy, tb, true) : e.matMul(dy, b, false, !tb);
      const db = !need[1] ? null : tb ? e.matMul(dy, a, true, ta) : e.matMul(a, dy, !ta, false);
      return [da, db];
    });
  }

  sum(x: Sym): Sym {
    const e = this.e;
    return this.rec(e.reduceSum(x, [], false), [x], (dy) => [e.expand(dy, x.shape)]);
  }

  /* --- composites with hand-written rules ----------------------------------------------------- */

  softmax(x: Sym): Sym {
    const e = this.e;
    const y = e.softmax(x);
    return this.rec(y, [x], (dy) => [e.mul(y, e.sub(dy, e.reduceSum(e.mul(dy, y), [-1], true)))]);
  }

  /** ONNX LayerNormalization; its Mean and InvStdDev outputs feed the backward. */
  layerNorm(x: Sym, gamma: Sym, beta: Sym, eps: number): Sym {
    const e = this.e;
    const { y, mean, invStd } = e.layerNorm(x, gamma, beta, eps);
    return this.rec(y, [x, gamma, beta], (dy, need) => {
      const xhat = e.mul(e.sub(x, mean), invStd);
      const dgamma = need[1] ? e.reduceTo(e.mul(dy, xhat), gamma.shape) : null;
      const dbeta = need[2] ? e.reduceTo(dy, beta.shape) : null;
      let dx: Sym | null = null;
      if (need[0]) {
        // dx = invStd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
        const gdy = e.mul(dy, gamma);
        const m1 = e.reduceMean(gdy, [-1], true);
        const m2 = e.reduceMean(e.mul(gdy, xhat), [-1], true);
        dx = e.mul(e.sub(e.sub(gdy, m1), e.mul(xhat, m2)), invStd);
      }
      return [dx, dgamma, dbeta];
    });
  }

  /** Gather rows; the table's gradient is a ScatterND-add of dy into zeros (ENGINE.md). */
  embedding(table: Sym, ids: Sym): Sym {
    const e = this.e;
    return this.rec(e.gather(table, ids), [table, ids], (dy, need) => {
      if (!need[0]) return [null, null];
      const idx = e.reshape(e.cast(ids, 'int64'), [...ids.shape, 1]);
      return [e.scatterNDAdd(e.zeros(table.shape), idx, dy), null];
    });
  }

  /**
   * SoftmaxCrossEntropyLoss per row, weighted on top (its own weights are per class). The logits'
   * gradient is coef * (softmax - onehot): softmax from its log_prob output, the onehot part a
   * ScatterElements-add of -coef (OneHot costs 60x more at [2048, 512], ENGINE.md).
   */
  crossEntropy(logits: Sym, targets: Sym, weights: Sym): Sym {
    const e = this.e;
    const { loss, logProb } = e.softmaxCrossEntropy(logits, targets);
    const denom = e.binary('Max', e.reduceSum(weights, [], false), this.g.scalar(1e-9));
    const y = e.div(e.reduceSum(e.mul(loss, weights), [], false), denom);
    return this.rec(y, [logits, targets, weights], (dy, need) => {
      if (!need[0]) return [null, null, null];
      const n = logits.shape[0]!;
      const coef = e.reshape(e.mul(weights, e.div(dy, denom)), [n, 1]);
      const p = e.mul(e.unary('Exp', logProb), coef);
      return [e.scatterElementsAdd(p, e.reshape(targets, [n, 1]), e.neg(coef), 1), null, null];
    });
  }

  /*
   * --- peepholes --------------------------------------------------------------------------------
   * Recording choices: a pattern of recorded nodes recorded as one onnxruntime kernel instead (the
   * graph drops the nodes nothing reads any more when it is serialised). Each returns null when
   * the pattern is not exactly there. (Measured and left out: SkipLayerNormalization for residual
   * + LayerNorm, slower on the CPU build than Add + LayerNormalization; MultiHeadAttention, no
   * faster than the recorded chain at d=128.)
   */

  /**
   * (A x B) * c for a float scalar constant c, possibly through a Reshape (attention's scaled
   * scores): one FusedMatMul with alpha = c, saving a pass over the product.
   */
  private scaledProduct(m: Sym, c: Sym): Sym | null {
    const cv = this.g.constantValue(c);
    if (!(cv instanceof Float32Array) || cv.length !== 1 || c.rank !== 0 || m.dtype !== 'float32') return null;
    let prod = this.g.producer(m);
    let reshaped = false;
    if (prod?.op === 'Reshape' && prod.domain === '' && prod.inputs[0]) {
      reshaped = true;
      prod = this.g.producer(prod.inputs[0]);
    }
    const plain = prod?.op === 'MatMul' && prod.domain === '';
    const fused = prod?.op === 'FusedMatMul' && prod.domain === MS_DOMAIN && Object.keys(prod.attrs).every((k) => ['transA', 'transB', 'alpha'].includes(k));
    if (!prod || !(plain || fused)) return null;
    const [a, b] = prod.inputs as [Sym, Sym];
    const ta = fused ? prod.attrs.transA === 1 : false;
    const tb = fused ? prod.attrs.transB === 1 : false;
    const alpha = fused ? ((prod.attrs.alpha as { float?: number } | undefined)?.float ?? 1) : 1;
    const src = reshaped ? this.g.producer(m)!.inputs[0]! : m;
    const [out] = this.g.node('FusedMatMul', [a, b], [[src.shape, 'float32']], { transA: ta ? 1 : 0, transB: tb ? 1 : 0, alpha: f(alpha * cv[0]!) }, MS_DOMAIN);
    return reshaped ? this.e.reshape(out!, m.shape) : out!;
  }
}
