import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * A static-shape ONNX graph under construction: every value (Sym) knows its shape and dtype when
 * it is created, so the recorder can answer Ops.shape() and the backward rules can plan reductions
 * without running anything. Serialised to a ModelProto (IR 8, opset 17 + com.microsoft) that
 * onnxruntime loads with InferenceSession.create(bytes).
 */

export type DType = 'float32' | 'int32' | 'int64' | 'bool';

export class Sym {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** A float attribute (plain numbers are int attributes). */
export interface FloatAttr {
  float: number;
}
export const f = (float: number): FloatAttr => ({ float });
/** A tensor attribute (ConstantOfShape's value). */
export interface TensorAttr {
  tensor: { data: Float32Array | Int32Array | BigInt64Array; shape: readonly number[] };
}
export type Attr = number | number[] | string | FloatAttr | TensorAttr;

interface NodeRec {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

/** A recorded node as the recorder's peephole rewrites see it. */
export interface NodeView {
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Sym | null)[];
  readonly attrs: Readonly<Record<string, Attr>>;
  /** Position in the node list (topological order). */
  readonly index: number;
}

const ONNX_TYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9 };
export const OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';

export class Graph {
  private nodes: NodeRec[] = [];
  private inits: { name: string; data: Float32Array | Int32Array | BigInt64Array; shape: readonly number[] }[] = [];
  private inputs: Sym[] = [];
  private outputs: Sym[] = [];
  private consts = new Map<string, Sym>();
  private counter = 0;
  /** Every value by name, and the index of the node that makes it. */
  private values = new Map<string, Sym>();
  private made = new Map<string, number>();
  private initData = new Map<string, Float32Array | Int32Array | BigInt64Array>();
  /** Node values that are graph outputs under another name (output()). */
  private renamed = new Map<string, string>();

  /** A fresh value name; `hint` keeps graphs readable in Netron and error messages. */
  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /** Each output's shape, by name (what a caller keeping outputs between runs must know). */
  outputShapes(): Record<string, number[]> {
    return Object.fromEntries(this.outputs.map((o) => [o.name, [...o.shape]]));
  }

  input(name: string, shape: readonly number[], dtype: DType): Sym {
    const s = new Sym(name, [...shape], dtype);
    this.inputs.push(s);
    this.values.set(name, s);
    return s;
  }

  /**
   * Marks `s` as a graph output called `name`. A node's value is renamed to `name` when the graph
   * is serialised (an Identity would copy it: onnxruntime keeps one whose input has other
   * readers, such as Adam's m_out and v_out); an input, an initializer or a value that is already
   * an output gets an Identity.
   */
  output(s: Sym, name: string): Sym {
    let out = s;
    if (s.name !== name) {
      if (this.values.has(name)) throw new Error(`graph output name "${name}" is already a value`);
      const taken = this.outputs.some((o) => o.name === s.name) || [...this.renamed.keys()].includes(s.name);
      if (this.made.has(s.name) && !taken) {
        this.renamed.set(s.name, name);
        out = new Sym(name, s.shape, s.dtype);
        this.values.set(name, out);
        this.made.set(name, this.made.get(s.name)!);
      } else out = this.node('Identity', [s], [[s.shape, s.dtype]], {}, '', name)[0]!;
    }
    this.outputs.push(out);
    return out;
  }

  /** An initializer; scalars and small int64 vectors are deduplicated by value. */
  init(data: Float32Array | Int32Array | BigInt64Array, shape: readonly number[], hint = 'const'): Sym {
    const dtype: DType = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'int64';
    const key = data.length <= 16 ? `${dtype}:${shape.join('x')}:${Array.from(data as ArrayLike<number | bigint>, String).join(',')}` : null;
    if (key && this.consts.has(key)) return this.consts.get(key)!;
    const s = new Sym(this.fresh(hint), [...shape], dtype);
    this.inits.push({ name: s.name, data, shape: [...shape] });
    this.values.set(s.name, s);
    this.initData.set(s.name, data);
    if (key) this.consts.set(key, s);
    return s;
  }

  scalar(v: number, dtype: 'float32' | 'int32' = 'float32'): Sym {
    return this.init(dtype === 'float32' ? Float32Array.of(v) : Int32Array.of(v), [], 'scalar');
  }

  /** A 1-D int64 constant (shapes, axes, split sizes, pads). */
  ints(values: readonly number[]): Sym {
    return this.init(BigInt64Array.from(values.map(BigInt)), [values.length], 'ints');
  }

  /** Appends a node; returns its outputs with the shapes and dtypes the caller computed. */
  node(op: string, inputs: readonly (Sym | null)[], outs: readonly (readonly [readonly number[], DType])[], attrs: Record<string, Attr> = {}, domain = '', name?: string): Sym[] {
    const outputs = outs.map(([shape, dtype], i) => new Sym(name && i === 0 ? name : this.fresh(op), [...shape], dtype));
    this.nodes.push({ op, domain, inputs: inputs.map((s) => s?.name ?? ''), outputs: outputs.map((s) => s.name), attrs });
    for (const o of outputs) {
      this.values.set(o.name, o);
      this.made.set(o.name, this.nodes.length - 1);
    }
    return outputs;
  }

  /** The node that makes `s` (null for graph inputs and initializers). */
  producer(s: Sym): NodeView | null {
    const index = this.made.get(s.name);
    if (index === undefined) return null;
    const n = this.nodes[index]!;
    return { op: n.op, domain: n.domain, inputs: n.inputs.map((x) => (x ? this.values.get(x)! : null)), attrs: n.attrs, index };
  }

  /** An initializer's values (undefined for anything else). */
  constantValue(s: Sym): Float32Array | Int32Array | BigInt64Array | undefined {
    return this.initData.get(s.name);
  }

  /**
   * The nodes to serialise: output values under their output names, and without the nodes no
   * graph output depends on (a peephole's leftovers).
   */
  private liveNodes(): NodeRec[] {
    const rn = (x: string) => this.renamed.get(x) ?? x;
    const nodes = this.renamed.size ? this.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rn), outputs: n.outputs.map(rn) })) : this.nodes;
    const need = new Set(this.outputs.map((o) => o.name));
    const keep: boolean[] = new Array(nodes.length).fill(false);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i]!;
      if (!n.outputs.some((o) => o && need.has(o))) continue;
      keep[i] = true;
      for (const x of n.inputs) if (x) need.add(x);
    }
    return nodes.filter((_, i) => keep[i]);
  }

  toBytes(graphName = 'zipper', metadata: Record<string, string> = {}): Uint8Array {
    const valueInfo = (s: Sym) => ({
      name: s.name,
      type: { tensorType: { elemType: ONNX_TYPE[s.dtype], shape: { dim: s.shape.map((d) => ({ dimValue: d })) } } },
    });
    const nodes = this.liveNodes();
    const used = new Set([...nodes.flatMap((n) => n.inputs), ...this.outputs.map((o) => o.name)]);
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'zipper',
      opsetImport: [
        { domain: '', version: OPSET },
        { domain: MS_DOMAIN, version: 1 },
      ],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: nodes.map((n) => ({
          opType: n.op,
          domain: n.domain,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => attrProto(k, v)),
        })),
        initializer: this.inits.filter((t) => used.has(t.name)).map((t) => tensorProto(t.name, t.data, t.shape)),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function tensorProto(name: string, data: Float32Array | Int32Array | BigInt64Array, shape: readonly number[]) {
  const dataType = data instanceof Float32Array ? 1 : data instanceof Int32Array ? 6 : 7;
  // Raw little-endian bytes: what every ONNX reader accepts, and no per-element boxing here.
  return { name, dims: [...shape], dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

const A = onnx.AttributeProto.AttributeType;

function attrProto(name: string, v: Attr) {
  if (typeof v === 'number') return { name, type: A.INT, i: v };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.TENSOR, t: tensorProto(name, v.tensor.data, v.tensor.shape) };
}
