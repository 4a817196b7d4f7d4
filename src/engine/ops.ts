/**
 * The tensor-operation interface the model is written against (DESIGN.md: one definition of the
 * model, two engines). Every layer in src/model/ uses only these operations, so the same code either
 * computes eagerly on TensorFlow.js (src/engine/tfjs-ops.ts) or records a static-shape graph for
 * onnxruntime (the ONNX engine). Keep the set small: adding an op means one forward, one backward
 * rule in the ONNX engine, and one parity test.
 *
 * Conventions: shapes are static and known at call time; float tensors are float32, index tensors
 * int32; elementwise ops broadcast like NumPy.
 */
export interface Ops<T> {
  /** Engine name for logs and errors ("tfjs", "onnx"). */
  readonly name: string;
  shape(x: T): readonly number[];

  /** A float32 or int32 tensor from host data (an initializer in a recorded graph). */
  constant(data: Float32Array | Int32Array, shape: readonly number[]): T;
  scalar(value: number): T;

  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  maximum(a: T, b: T): T;
  sqrt(x: T): T;

  /** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as in GPT-2 / PyTorch's default. */
  gelu(x: T): T;
  relu(x: T): T;
  tanh(x: T): T;

  reshape(x: T, shape: readonly number[]): T;
  transpose(x: T, perm: readonly number[]): T;
  concat(xs: readonly T[], axis: number): T;
  /** `size` elements of `axis` starting at `begin`. */
  slice(x: T, axis: number, begin: number, size: number): T;

  /** Matrix product over the last two axes; leading axes must match (no broadcasting). */
  matMul(a: T, b: T, transposeA?: boolean, transposeB?: boolean): T;

  /** Softmax over the last axis. */
  softmax(x: T): T;
  /** LayerNorm over the last axis with affine gamma/beta of that axis's size. */
  layerNorm(x: T, gamma: T, beta: T, eps: number): T;
  /** Sum of all elements, a scalar. */
  sum(x: T): T;

  /** Rows of `table` [V, d] picked by int32 `ids` (any shape) -> ids.shape + [d]. */
  embedding(table: T, ids: T): T;
  /**
   * Weighted mean next-token cross-entropy: logits [N, V], int32 targets [N], float weights [N]
   * (0 for padding). Returns a scalar: sum_i w_i * -log softmax(logits_i)[t_i] / sum_i w_i.
   */
  crossEntropy(logits: T, targets: T, weights: T): T;
}
