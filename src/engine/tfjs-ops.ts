import * as tf from '@tensorflow/tfjs';
import type { Ops } from './ops.js';

/**
 * The tensor-op interface computed eagerly on the current TensorFlow.js backend; gradients come
 * from tfjs's own autodiff. Only kernels every backend has are used (ENGINE.md): wasm has no
 * UnsortedSegmentSum, so the embedding's gradient is a one-hot matMul there.
 */
export const tfjsOps: Ops<tf.Tensor> = {
  name: 'tfjs',
  shape: (x) => x.shape,

  constant: (data, shape) => tf.tensor(data, [...shape], data instanceof Int32Array ? 'int32' : 'float32'),
  scalar: (v) => tf.scalar(v),

  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  div: (a, b) => tf.div(a, b),
  maximum: (a, b) => tf.maximum(a, b),
  sqrt: (x) => tf.sqrt(x),

  gelu: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  relu: (x) => tf.relu(x),
  tanh: (x) => tf.tanh(x),

  reshape: (x, shape) => tf.reshape(x, [...shape]),
  transpose: (x, perm) => tf.transpose(x, [...perm]),
  concat: (xs, axis) => tf.concat([...xs], axis),
  slice: (x, axis, begin, size) => {
    const b = x.shape.map(() => 0);
    const s = x.shape.map(() => -1);
    b[axis] = begin;
    s[axis] = size;
    return tf.slice(x, b, s);
  },

  matMul: (a, b, transposeA = false, transposeB = false) =>
    a.rank === 2 && b.rank === 2 && tf.getBackend() === 'wasm' ? plainMatMul2d(a as tf.Tensor2D, b as tf.Tensor2D, transposeA, transposeB) : tf.matMul(a, b, transposeA, transposeB),

  softmax: (x) => tf.softmax(x),
  layerNorm: (x, gamma, beta, eps) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  },
  sum: (x) => tf.sum(x),

  embedding: (table, ids) => {
    const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
    const rows = hasKernel('UnsortedSegmentSum') ? tf.gather(table, flat) : oneHotGather(table as tf.Tensor2D, flat);
    return tf.reshape(rows, [...ids.shape, table.shape[1]!]);
  },
  crossEntropy: (logits, targets, weights) => {
    const logp = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logp, oneHotFloat(targets, logits.shape[1]!)), -1);
    return tf.div(tf.neg(tf.sum(tf.mul(picked, weights))), tf.maximum(tf.sum(weights), 1e-9));
  },
};

function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/** gather with a gradient that needs no UnsortedSegmentSum: d(table) = onehot(ids)^T @ dy. */
function oneHotGather(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.gather(args[0] as tf.Tensor, ids),
    gradFunc: (dy: tf.Tensor) => tf.matMul(tf.transpose(oneHotFloat(ids, table.shape[0])), dy as tf.Tensor2D),
  }));
  return f(table);
}

/**
 * One-hot rows as float32. Cast rather than oneHot(..., 'float32'): tfjs-backend-wasm 4.22's OneHot
 * kernel ignores the dtype and writes int32 bit patterns (1 reads as 1.4e-45).
 */
function oneHotFloat(ids: tf.Tensor, depth: number): tf.Tensor {
  return tf.cast(tf.oneHot(tf.cast(ids, 'int32') as tf.Tensor1D, depth), 'float32');
}

/**
 * A 2-D product that only ever runs wasm's fast kernel: ENGINE.md measured plain 2-D matMul (no
 * transpose flags) at 37-44 GFLOP/s on tfjs-wasm and every other form at about 3. Transposes are
 * made explicit, in the forward and in both gradients (tfjs's own MatMul gradient uses the flags).
 */
function plainMatMul2d(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    // Inputs must go through save(): tensors captured by the closure are gone by backward time.
    save([x, y]);
    const op = (t: tf.Tensor2D, flip: boolean) => (flip ? tf.transpose(t) : t);
    return {
      value: tf.matMul(op(x, transposeA), op(y, transposeB)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xa, yb] = [op(saved[0] as tf.Tensor2D, transposeA), op(saved[1] as tf.Tensor2D, transposeB)];
        // d(xa) = dy yb^T, d(yb) = xa^T dy; then undo the forward transposes for x and y.
        const dxa = tf.matMul(dy as tf.Tensor2D, tf.transpose(yb));
        const dyb = tf.matMul(tf.transpose(xa), dy as tf.Tensor2D);
        return [op(dxa as tf.Tensor2D, transposeA), op(dyb as tf.Tensor2D, transposeB)];
      },
    };
  });
  return f(a, b) as tf.Tensor2D;
}
