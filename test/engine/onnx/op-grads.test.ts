import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../../../src/engine/ops.js';
import { tfjsOps } from '../../../src/engine/tfjs-ops.js';
import { gradients } from '../../../src/engine/onnx/autodiff.js';
import { Graph, type Sym } from '../../../src/engine/onnx/graph.js';
import { Recorder } from '../../../src/engine/onnx/recorder.js';
import { OrtRunner } from '../../../src/engine/onnx/runner.js';
import { Rng } from '../../../src/util/rng.js';
import { useCpu } from '../../helpers.js';
import { relDiff } from './parity-helpers.js';

/**
 * Every op's forward and backward rule against tfjs, one case per op (and per broadcasting or
 * transpose variant): y = f(inputs), loss = sum(y * r) with a fixed random r, and d loss / d input
 * for every float input.
 */

/** `data`: an input the op does not differentiate (ids, targets, loss weights). */
type In = { data: Float32Array | Int32Array; shape: number[]; isData?: boolean };
const diff = (t: In) => t.data instanceof Float32Array && !t.isData;
type Fn = <T>(ops: Ops<T>, xs: T[]) => T;

const rng = new Rng(42);
const rand = (shape: number[], lo = -1, hi = 1): In => ({ data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * rng.next()), shape });
const ints = (shape: number[], n: number): In => ({ data: Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(n)), shape });

const CASES: [string, In[], Fn][] = [
  ['add broadcast', [rand([2, 3, 4]), rand([4])], (o, [a, b]) => o.add(a!, b!)],
  ['add both broadcast', [rand([2, 1, 4]), rand([3, 1])], (o, [a, b]) => o.add(a!, b!)],
  ['sub broadcast', [rand([3, 1]), rand([2, 3, 4])], (o, [a, b]) => o.sub(a!, b!)],
  ['mul broadcast', [rand([2, 3, 4]), rand([3, 1])], (o, [a, b]) => o.mul(a!, b!)],
  ['mul by scalar', [rand([5])], (o, [a]) => o.mul(a!, o.scalar(0.3))],
  ['div broadcast', [rand([2, 3]), rand([3], 0.5, 2)], (o, [a, b]) => o.div(a!, b!)],
  // Same shapes: tfjs 4.22's Maximum gradient does not sum a broadcast input back to its shape.
  ['maximum', [rand([4, 3]), rand([4, 3])], (o, [a, b]) => o.maximum(a!, b!)],
  ['sqrt', [rand([7], 0.1, 3)], (o, [a]) => o.sqrt(a!)],
  ['gelu', [rand([3, 5], -3, 3)], (o, [a]) => o.gelu(a!)],
  ['relu', [rand([3, 5])], (o, [a]) => o.relu(a!)],
  ['tanh', [rand([3, 5], -2, 2)], (o, [a]) => o.tanh(a!)],
  ['reshape', [rand([2, 6])], (o, [a]) => o.mul(o.reshape(a!, [3, 4]), o.reshape(a!, [3, 4]))],
  ['transpose', [rand([2, 3, 4])], (o, [a]) => o.transpose(a!, [2, 0, 1])],
  ['concat', [rand([2, 1, 3]), rand([2, 4, 3]), rand([2, 2, 3])], (o, xs) => o.concat(xs, 1)],
  ['slice', [rand([3, 6])], (o, [a]) => o.slice(a!, 1, 2, 3)],
  ['matMul', [rand([3, 4]), rand([4, 5])], (o, [a, b]) => o.matMul(a!, b!)],
  ['matMul A^T', [rand([4, 3]), rand([4, 5])], (o, [a, b]) => o.matMul(a!, b!, true, false)],
  ['matMul B^T', [rand([2, 3, 4]), rand([2, 5, 4])], (o, [a, b]) => o.matMul(a!, b!, false, true)],
  ['matMul A^T B^T', [rand([2, 4, 3]), rand([2, 5, 4])], (o, [a, b]) => o.matMul(a!, b!, true, true)],
  ['softmax', [rand([2, 3, 5], -3, 3)], (o, [a]) => o.softmax(a!)],
  ['layerNorm', [rand([2, 3, 6], -2, 2), rand([6], 0.5, 1.5), rand([6])], (o, [x, g, b]) => o.layerNorm(x!, g!, b!, 1e-5)],
  ['sum', [rand([3, 4])], (o, [a]) => o.mul(o.sum(a!), o.sum(a!))],
  // Repeated ids: the table's gradient must add every occurrence.
  ['embedding', [rand([6, 4]), { data: Int32Array.of(1, 3, 1, 0, 5, 1), shape: [2, 3] }], (o, [t, i]) => o.embedding(t!, i!)],
  ['crossEntropy', [rand([5, 7], -3, 3), ints([5], 7), { data: Float32Array.of(1, 0, 1, 0.5, 1), shape: [5], isData: true }], (o, [l, t, w]) => o.crossEntropy(l!, t!, w!)],
];

async function ortCase(r: OrtRunner, key: string, inputs: In[], fn: Fn, weight: In) {
  const g = new Graph();
  const rec = new Recorder(g);
  const xs = inputs.map((t, i) => g.input(`x${i}`, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32'));
  const floats = xs.filter((_, i) => diff(inputs[i]!));
  floats.forEach((x) => rec.track(x));
  const y = fn(rec, xs);
  const loss = rec.sum(rec.mul(y, rec.constant(weight.data, weight.shape)));
  const grads = gradients(rec, loss, floats);
  g.output(y, 'y');
  grads.forEach((d: Sym | null, i) => g.output(d!, `d${i}`));
  await r.load(key, g.toBytes());
  const feeds = Object.fromEntries(inputs.map((t, i) => [`x${i}`, t]));
  const out = await r.run(key, { feeds, fetch: ['y', ...floats.map((_, i) => `d${i}`)] });
  return { y: out.y!.data, grads: floats.map((_, i) => out[`d${i}`]!.data) };
}

function tfjsCase(inputs: In[], fn: Fn, weight: In) {
  return tf.tidy(() => {
    const ts = inputs.map((t) => tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32'));
    const fl = inputs.flatMap((t, i) => (diff(t) ? [i] : []));
    const f = (...xs: tf.Tensor[]) => {
      const all = ts.map((t, i) => (fl.includes(i) ? xs[fl.indexOf(i)]! : t));
      return tf.sum(tf.mul(fn(tfjsOps, all), tf.tensor(weight.data, weight.shape)));
    };
    const y = fn(tfjsOps, ts).dataSync();
    const grads = tf.grads(f)(fl.map((i) => ts[i]!)).map((g) => g.dataSync());
    return { y, grads };
  });
}

test('every op: forward and gradients equal tfjs', async () => {
  await useCpu();
  const r = await OrtRunner.start({ providers: ['cpu'] });
  try {
    for (const [name, inputs, fn] of CASES) {
      const yShape = tf.tidy(() => fn(tfjsOps, inputs.map((t) => tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32'))).shape);
      const w = rand(yShape);
      const want = tfjsCase(inputs, fn, w);
      const got = await ortCase(r, name, inputs, fn, w);
      assert.ok(relDiff(got.y, want.y) < 1e-5, `${name}: forward differs by ${relDiff(got.y, want.y)}`);
      assert.equal(got.grads.length, want.grads.length, name);
      got.grads.forEach((g, i) => {
        const d = relDiff(g, want.grads[i]!);
        assert.ok(d < 1e-5, `${name}: gradient of input ${i} differs by ${d}`);
      });
    }
  } finally {
    r.dispose();
  }
});
