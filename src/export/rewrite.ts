import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import type { Slot } from '../engine/onnx/layout.js';

const { onnx } = onnxProto;
type Model = InstanceType<typeof onnx.ModelProto>;
type Node = OnnxTypes.INodeProto;
type Int = number | { toNumber(): number } | null | undefined;

/**
 * ModelProto surgery that turns an engine graph (tower-graphs.ts) into a file for other programs,
 * without a second copy of the model: the engine feeds every weight as one flat `params` input
 * and multiplies transposed operands with com.microsoft FusedMatMul; an export wants named weights
 * inside the file and nothing outside the standard opset, so any ONNX runtime (and the checker's
 * full shape inference) can read it. onnxruntime fuses Transpose + MatMul back by itself.
 */

export const num = (x: Int): number => (x == null ? 0 : typeof x === 'number' ? x : x.toNumber());

/** Replaces the flat `params` input, its Split and the per-weight Reshapes by named initializers. */
export function foldParams(model: Model, slots: readonly Slot[], flat: Float32Array): void {
  const g = model.graph!;
  const nodes = g.node!;
  const users = (name: string) => nodes.filter((n) => n.input!.includes(name));
  const split = users('params');
  if (split.length !== 1 || split[0]!.opType !== 'Split' || split[0]!.output!.length !== slots.length)
    throw new Error(`export: the graph does not split "params" into ${slots.length} weights as expected (tower-graphs.ts changed?)`);
  const taken = new Set(nodes.flatMap((n) => [...n.input!, ...n.output!]));
  const drop = new Set<Node>(split);
  const rename = new Map<string, string>();
  split[0]!.output!.forEach((piece, i) => {
    const slot = slots[i]!;
    if (taken.has(slot.name)) throw new Error(`export: weight name "${slot.name}" clashes with a graph value`);
    const u = users(piece);
    // Rank-1 weights need no Reshape (the emitter skips no-op reshapes): the Split output is the weight.
    if (u.length === 1 && u[0]!.opType === 'Reshape' && u[0]!.input![0] === piece) {
      drop.add(u[0]!);
      rename.set(u[0]!.output![0]!, slot.name);
    } else rename.set(piece, slot.name);
  });
  g.node = nodes.filter((n) => !drop.has(n));
  for (const n of g.node) n.input = n.input!.map((x) => rename.get(x) ?? x);
  for (const o of g.output!) if (rename.has(o.name!)) throw new Error(`export: a weight is a graph output (${o.name})`);
  g.input = g.input!.filter((i) => i.name !== 'params');
  for (const s of slots) {
    const data = flat.subarray(s.offset, s.offset + s.size);
    g.initializer!.push({ name: s.name, dims: [...s.shape], dataType: 1, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  dropUnusedInitializers(model);
}

/** FusedMatMul(a, b, transA, transB, alpha) -> MatMul(Transpose(a)?, Transpose(b)?) (* alpha). */
export function standardMatMul(model: Model): void {
  const g = model.graph!;
  const ranks = rankOracle(model);
  let k = 0;
  const fresh = (hint: string) => `export_${hint}_${k++}`;
  const out: Node[] = [];
  for (const n of g.node!) {
    if (n.opType !== 'FusedMatMul') {
      out.push(n);
      continue;
    }
    const attr = (name: string) => n.attribute!.find((a) => a.name === name);
    const known = new Set(['transA', 'transB', 'alpha']);
    const odd = n.attribute!.filter((a) => !known.has(a.name!) || (a.name !== 'alpha' && num(a.i) > 1));
    if (odd.length) throw new Error(`export: FusedMatMul with attributes ${odd.map((a) => a.name).join(', ')} has no standard rewrite here`);
    const operand = (x: string, t: boolean) => {
      if (!t) return x;
      const r = ranks(x);
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      const y = fresh('T');
      out.push({ opType: 'Transpose', domain: '', input: [x], output: [y], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: perm }] });
      return y;
    };
    const a = operand(n.input![0]!, num(attr('transA')?.i) === 1);
    const b = operand(n.input![1]!, num(attr('transB')?.i) === 1);
    const alpha = attr('alpha')?.f ?? 1;
    if (alpha === 1) out.push({ opType: 'MatMul', domain: '', input: [a, b], output: n.output });
    else {
      const mm = fresh('MatMul');
      const s = fresh('alpha');
      g.initializer!.push({ name: s, dims: [], dataType: 1, rawData: new Uint8Array(Float32Array.of(alpha).buffer) });
      out.push({ opType: 'MatMul', domain: '', input: [a, b], output: [mm] }, { opType: 'Mul', domain: '', input: [mm, s], output: n.output });
    }
  }
  g.node = out;
  if (!out.some((n) => n.domain)) model.opsetImport = model.opsetImport!.filter((o) => !o.domain);
}

/**
 * The rank of a value, from what the file itself says: initializer dims, declared inputs, or the
 * node that made it (Reshape to a constant shape, Transpose's perm). Enough for the operands the
 * model's matMuls see; anything else is an error at export time, never a wrong file.
 */
function rankOracle(model: Model): (name: string) => number {
  const g = model.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const inputs = new Map(g.input!.map((i) => [i.name!, i.type?.tensorType?.shape?.dim?.length ?? -1]));
  const producer = new Map(g.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  return (name) => {
    const t = inits.get(name);
    if (t) return t.dims!.length;
    if ((inputs.get(name) ?? -1) >= 0) return inputs.get(name)!;
    const p = producer.get(name);
    const shape = p?.opType === 'Reshape' ? inits.get(p.input![1]!) : undefined;
    if (shape?.dims?.length === 1) return num(shape.dims[0]);
    const perm = p?.opType === 'Transpose' ? p.attribute!.find((a) => a.name === 'perm') : undefined;
    if (perm?.ints?.length) return perm.ints.length;
    throw new Error(`export: cannot tell the rank of "${name}" (made by ${p?.opType ?? 'nothing'}) to rewrite a FusedMatMul`);
  };
}

/** Initializers no node reads (Reshape shapes of folded weights): onnxruntime warns about them. */
function dropUnusedInitializers(model: Model): void {
  const g = model.graph!;
  const used = new Set([...g.node!.flatMap((n) => n.input!), ...g.output!.map((o) => o.name!)]);
  g.initializer = g.initializer!.filter((t) => used.has(t.name!));
}
