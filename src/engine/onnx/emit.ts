import { MS_DOMAIN, f, type DType, type Graph, type Sym } from './graph.js';

/**
 * Shape-inferring ONNX node emitters: each computes its output shape and appends one node (or a
 * few). No gradients here: the recorder (ops.ts) pairs these forwards with backward rules, and
 * the backward rules are written with these same emitters.
 */

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export class Emitter {
  constructor(readonly g: Graph) {}

  private one(op: string, inputs: readonly (Sym | null)[], shape: readonly number[], dtype: DType, attrs = {}, domain = ''): Sym {
    return this.g.node(op, inputs, [[shape, dtype]], attrs, domain)[0]!;
  }

  binary(op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max', a: Sym, b: Sym): Sym {
    if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes ${a.dtype} and ${b.dtype} differ`);
    return this.one(op, [a, b], broadcastShape(a.shape, b.shape), a.dtype);
  }
  add = (a: Sym, b: Sym) => this.binary('Add', a, b);
  sub = (a: Sym, b: Sym) => this.binary('Sub', a, b);
  mul = (a: Sym, b: Sym) => this.binary('Mul', a, b);
  div = (a: Sym, b: Sym) => this.binary('Div', a, b);

  unary(op: 'Sqrt' | 'Erf' | 'Exp' | 'Tanh' | 'Relu', x: Sym): Sym {
    return this.one(op, [x], x.shape, x.dtype);
  }

  /** com.microsoft Gelu: exact (erf) GELU in one pass; inference only (no CPU gradient kernel). */
  gelu(x: Sym): Sym {
    return this.one('Gelu', [x], x.shape, x.dtype, {}, MS_DOMAIN);
  }

  /** -x as a product: onnxruntime's CPU Neg took 3x as long as Mul by a scalar on [16, 128, 512]. */
  neg(x: Sym): Sym {
    return this.mul(x, this.g.scalar(-1));
  }

  compare(op: 'Greater' | 'GreaterOrEqual', a: Sym, b: Sym): Sym {
    return this.one(op, [a, b], broadcastShape(a.shape, b.shape), 'bool');
  }

  where(cond: Sym, a: Sym, b: Sym): Sym {
    return this.one('Where', [cond, a, b], broadcastShape(cond.shape, broadcastShape(a.shape, b.shape)), a.dtype);
  }

  cast(x: Sym, to: DType): Sym {
    const code = { float32: 1, int32: 6, int64: 7, bool: 9 }[to];
    return x.dtype === to ? x : this.one('Cast', [x], x.shape, to, { to: code });
  }

  reshape(x: Sym, shape: readonly number[]): Sym {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== x.size) throw new Error(`reshape [${x.shape}] -> [${shape}]: ${x.size} vs ${n} elements`);
    if (sameShape(x.shape, shape)) return x;
    return this.one('Reshape', [x, this.g.ints(shape)], shape, x.dtype);
  }

  transpose(x: Sym, perm: readonly number[]): Sym {
    if (perm.length !== x.rank) throw new Error(`transpose of rank ${x.rank} with perm [${perm}]`);
    if (perm.every((p, i) => p === i)) return x;
    return this.one('Transpose', [x], perm.map((p) => x.shape[p]!), x.dtype, { perm: [...perm] });
  }

  concat(xs: readonly Sym[], axis: number): Sym {
    if (xs.length === 1) return xs[0]!;
    const ax = normAxis(axis, xs[0]!.rank);
    const shape = [...xs[0]!.shape];
    shape[ax] = xs.reduce((n, x) => n + x.shape[ax]!, 0);
    return this.one('Concat', xs, shape, xs[0]!.dtype, { axis: ax });
  }

  split(x: Sym, axis: number, sizes: readonly number[]): Sym[] {
    if (sizes.length === 1) return [x];
    const ax = normAxis(axis, x.rank);
    const outs = sizes.map((s) => {
      const shape = [...x.shape];
      shape[ax] = s;
      return [shape, x.dtype] as const;
    });
    return this.g.node('Split', [x, this.g.ints(sizes)], outs, { axis: ax });
  }

  slice(x: Sym, axis: number, begin: number, size: number): Sym {
    const ax = normAxis(axis, x.rank);
    if (begin === 0 && size === x.shape[ax]) return x;
    const shape = [...x.shape];
    shape[ax] = size;
    return this.one('Slice', [x, this.g.ints([begin]), this.g.ints([begin + size]), this.g.ints([ax])], shape, x.dtype);
  }

  /** Zero padding of `before`/`after` elements along one axis. */
  pad(x: Sym, axis: number, before: number, after: number): Sym {
    if (before === 0 && after === 0) return x;
    const ax = normAxis(axis, x.rank);
    const pads = new Array<number>(2 * x.rank).fill(0);
    pads[ax] = before;
    pads[x.rank + ax] = after;
    const shape = [...x.shape];
    shape[ax] = x.shape[ax]! + before + after;
    return this.one('Pad', [x, this.g.ints(pads)], shape, x.dtype);
  }

  /**
   * Product over the last two axes. Transposed operands use com.microsoft FusedMatMul, whose
   * transpose flags cost nothing (ENGINE.md: an explicit Transpose + MatMul is about 6% slower).
   */
  matMul(a: Sym, b: Sym, ta = false, tb = false): Sym {
    if (a.rank !== b.rank || a.rank < 2) throw new Error(`matMul of ranks ${a.rank} and ${b.rank}`);
    const lead = a.shape.slice(0, -2);
    if (!sameShape(lead, b.shape.slice(0, -2))) throw new Error(`matMul batch dims [${a.shape}] vs [${b.shape}]`);
    const [m, ka] = ta ? [a.shape.at(-1)!, a.shape.at(-2)!] : [a.shape.at(-2)!, a.shape.at(-1)!];
    const [kb, n] = tb ? [b.shape.at(-1)!, b.shape.at(-2)!] : [b.shape.at(-2)!, b.shape.at(-1)!];
    if (ka !== kb) throw new Error(`matMul inner dims ${ka} vs ${kb} ([${a.shape}]${ta ? 'T' : ''} x [${b.shape}]${tb ? 'T' : ''})`);
    const shape = [...lead, m, n];
    if (!ta && !tb) return this.one('MatMul', [a, b], shape, 'float32');
    return this.one('FusedMatMul', [a, b], shape, 'float32', { transA: ta ? 1 : 0, transB: tb ? 1 : 0, alpha: f(1) }, MS_DOMAIN);
  }

  /** ReduceSum over `axes` (all axes when empty). */
  reduceSum(x: Sym, axes: readonly number[], keepdims: boolean): Sym {
    const ax = axes.length ? axes.map((a) => normAxis(a, x.rank)) : x.shape.map((_, i) => i);
    const shape = x.shape.flatMap((d, i) => (ax.includes(i) ? (keepdims ? [1] : []) : [d]));
    return this.one('ReduceSum', [x, this.g.ints(ax)], shape, x.dtype, { keepdims: keepdims ? 1 : 0 });
  }

  /** ReduceMean over `axes` (an attribute until opset 18). */
  reduceMean(x: Sym, axes: readonly number[], keepdims: boolean): Sym {
    const ax = axes.map((a) => normAxis(a, x.rank));
    const shape = x.shape.flatMap((d, i) => (ax.includes(i) ? (keepdims ? [1] : []) : [d]));
    return this.one('ReduceMean', [x], shape, x.dtype, { axes: ax, keepdims: keepdims ? 1 : 0 });
  }

  /** Sums `dy` over the axes that broadcasting expanded, so it has `shape` again. */
  reduceTo(dy: Sym, shape: readonly number[]): Sym {
    if (sameShape(dy.shape, shape)) return dy;
    const lead = dy.rank - shape.length;
    const axes = dy.shape.flatMap((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? [i] : []));
    return this.reshape(this.reduceSum(dy, axes, true), shape);
  }

  expand(x: Sym, shape: readonly number[]): Sym {
    if (sameShape(x.shape, shape)) return x;
    return this.one('Expand', [x, this.g.ints(shape)], shape, x.dtype);
  }

  /** Sum of same-shape tensors (gradient accumulation). */
  sum(xs: readonly Sym[]): Sym {
    if (xs.length === 1) return xs[0]!;
    if (xs.length === 2) return this.add(xs[0]!, xs[1]!);
    return this.one('Sum', xs, xs[0]!.shape, xs[0]!.dtype);
  }

  zeros(shape: readonly number[]): Sym {
    return this.one('ConstantOfShape', [this.g.ints(shape)], shape, 'float32', { value: { tensor: { data: Float32Array.of(0), shape: [1] } } });
  }

  softmax(x: Sym): Sym {
    return this.one('Softmax', [x], x.shape, x.dtype, { axis: -1 });
  }

  gather(table: Sym, ids: Sym): Sym {
    return this.one('Gather', [table, ids], [...ids.shape, ...table.shape.slice(1)], table.dtype, { axis: 0 });
  }

  /** LayerNormalization over the last axis: y, and the Mean and InvStdDev the backward reuses. */
  layerNorm(x: Sym, gamma: Sym, beta: Sym, eps: number): { y: Sym; mean: Sym; invStd: Sym } {
    const stat = [...x.shape.slice(0, -1), 1];
    const [y, mean, invStd] = this.g.node('LayerNormalization', [x, gamma, beta], [[x.shape, 'float32'], [stat, 'float32'], [stat, 'float32']], { axis: -1, epsilon: f(eps) });
    return { y: y!, mean: mean!, invStd: invStd! };
  }

  /** Per-row cross-entropy [N] of logits [N, C] and the log-softmax the backward reuses. */
  softmaxCrossEntropy(logits: Sym, targets: Sym): { loss: Sym; logProb: Sym } {
    const [loss, logProb] = this.g.node('SoftmaxCrossEntropyLoss', [logits, targets], [[[logits.shape[0]!], 'float32'], [logits.shape, 'float32']], { reduction: 'none' });
    return { loss: loss!, logProb: logProb! };
  }

  scatterNDAdd(data: Sym, indices: Sym, updates: Sym): Sym {
    return this.one('ScatterND', [data, indices, updates], data.shape, data.dtype, { reduction: 'add' });
  }

  scatterElementsAdd(data: Sym, indices: Sym, updates: Sym, axis: number): Sym {
    return this.one('ScatterElements', [data, indices, updates], data.shape, data.dtype, { axis, reduction: 'add' });
  }
}
