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

  /** A fresh value name; `hint` keeps graphs readable in Netron and error messages. */
  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, shape: readonly number[], dtype: DType): Sym {
    const s = new Sym(name, [...shape], dtype);
    this.inputs.push(s);
    return s;
  }

  /** Marks `s` as a graph output called `name` (an Identity when the value has another name). */
  output(s: Sym, name: string): Sym {
    const out = s.name === name ? s : this.node('Identity', [s], [[s.shape, s.dtype]], {}, '', name)[0]!;
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
    return outputs;
  }

  toBytes(graphName = 'zipper', metadata: Record<string, string> = {}): Uint8Array {
    const valueInfo = (s: Sym) => ({
      name: s.name,
      type: { tensorType: { elemType: ONNX_TYPE[s.dtype], shape: { dim: s.shape.map((d) => ({ dimValue: d })) } } },
    });
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
        node: this.nodes.map((n) => ({
          opType: n.op,
          domain: n.domain,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => attrProto(k, v)),
        })),
        initializer: this.inits.map((t) => tensorProto(t.name, t.data, t.shape)),
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
