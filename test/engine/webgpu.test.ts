/**
 * The WebGPU backend against the cpu backend, on whatever adapter this machine has (in CI: Mesa's
 * llvmpipe through OpenGL ES, see .ci/mesa.sh). Without an adapter these tests are skipped, or
 * fail when ZIPPER_REQUIRE_WEBGPU=1.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { describeBackend, initBackend, tf } from '../../src/engine/backends.js';
import { fiveTowerSteps, maxAbsDiff } from '../helpers.js';

const TOL = 1e-4;

let availability: Promise<{ ok: true; label: string } | { ok: false; reason: string }> | undefined;

/** True when the webgpu backend can run; otherwise skips the test (or fails it when required). */
async function needWebgpu(t: TestContext): Promise<boolean> {
  availability ??= initBackend('webgpu').then(
    (c) => ({ ok: true as const, label: describeBackend(c) }),
    (e: unknown) => ({ ok: false as const, reason: (e as Error).message }),
  );
  const a = await availability;
  if (a.ok) {
    t.diagnostic(a.label);
    return true;
  }
  if (process.env.ZIPPER_REQUIRE_WEBGPU === '1') assert.fail(`ZIPPER_REQUIRE_WEBGPU=1 but ${a.reason}`);
  t.skip(a.reason);
  return false;
}

/** Deterministic data, independent of any backend's RNG. */
function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    out[i] = ((((z ^ (z >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function oneHot(rows: number, cols: number, seed: number): Float32Array {
  const r = rand(rows, seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) out[i * cols + Math.floor(((r[i]! + 1) / 2) * cols) % cols] = 1;
  return out;
}

/** Run `fn` on cpu, then on webgpu; return both results as plain arrays. */
async function onBoth(fn: () => tf.Tensor[]): Promise<{ cpu: Float32Array[]; gpu: Float32Array[] }> {
  const run = async (): Promise<Float32Array[]> => {
    const ts = tf.tidy(fn);
    const out = await Promise.all(ts.map(async (x) => (await x.data()) as Float32Array));
    tf.dispose(ts);
    return out;
  };
  await initBackend('cpu');
  const cpu = await run();
  await initBackend('webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.equal(tf.env().getBool('WEBGPU_CPU_FORWARD'), false, 'small ops must not be forwarded to the CPU');
  const gpu = await run();
  return { cpu, gpu };
}

/** max |a-b| / max |b| (relative to the reference's scale). */
function relErr(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / scale;
}

function assertClose(t: TestContext, gpu: Float32Array[], cpu: Float32Array[], names: string[]): void {
  assert.equal(gpu.length, cpu.length);
  const errs = names.map((n, i) => {
    const e = relErr(gpu[i]!, cpu[i]!);
    assert.ok(Number.isFinite(e), `${n}: non-finite`);
    return [n, e] as const;
  });
  t.diagnostic(errs.map(([n, e]) => `${n} rel ${e.toExponential(2)}`).join(', '));
  for (const [n, e] of errs) assert.ok(e <= TOL, `${n}: webgpu vs cpu relative error ${e} > ${TOL}`);
}

test('webgpu matMul 256x256 matches cpu', async (t) => {
  if (!(await needWebgpu(t))) return;
  const a = rand(256 * 256, 1);
  const b = rand(256 * 256, 2);
  const { cpu, gpu } = await onBoth(() => [tf.matMul(tf.tensor2d(a, [256, 256]), tf.tensor2d(b, [256, 256]))]);
  assertClose(t, gpu, cpu, ['matMul']);
});

test('webgpu softmax matches cpu', async (t) => {
  if (!(await needWebgpu(t))) return;
  const x = rand(64 * 100, 3, 4);
  const { cpu, gpu } = await onBoth(() => [tf.softmax(tf.tensor2d(x, [64, 100]))]);
  assertClose(t, gpu, cpu, ['softmax']);
});

test('webgpu gradients of sum(softmax(x@w)*y) match cpu', async (t) => {
  if (!(await needWebgpu(t))) return;
  const xs = rand(32 * 48, 4);
  const ws = rand(48 * 40, 5, 0.5);
  const ys = oneHot(32, 40, 6);
  const { cpu, gpu } = await onBoth(() => {
    const y = tf.tensor2d(ys, [32, 40]);
    const f = (x: tf.Tensor, w: tf.Tensor): tf.Tensor =>
      tf.sum(tf.mul(tf.softmax(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D)), y));
    const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(xs, [32, 48]), tf.tensor2d(ws, [48, 40])]);
    return [value, ...grads];
  });
  assertClose(t, gpu, cpu, ['value', 'dx', 'dw']);
});

test('webgpu gradients of a layerNorm built on tf.moments match cpu', async (t) => {
  if (!(await needWebgpu(t))) return;
  const [n, d] = [24, 64];
  const xs = rand(n * d, 7, 3);
  const gs = rand(d, 8);
  const bs = rand(d, 9);
  const ys = rand(n * d, 10);
  const { cpu, gpu } = await onBoth(() => {
    const y = tf.tensor2d(ys, [n, d]);
    const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
      const { mean, variance } = tf.moments(x, -1, true);
      const norm = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5)));
      const out = tf.add(tf.mul(norm, g), b);
      return tf.sum(tf.mul(tf.tanh(out), y));
    };
    const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(xs, [n, d]), tf.tensor1d(gs), tf.tensor1d(bs)]);
    return [value, ...grads];
  });
  assertClose(t, gpu, cpu, ['value', 'dx', 'dgamma', 'dbeta']);
});

test('webgpu Adam steps on a 2-layer MLP give the same losses as cpu', async (t) => {
  if (!(await needWebgpu(t))) return;
  const [n, din, dh, dout, steps] = [32, 16, 32, 8, 6];
  const init = { w1: rand(din * dh, 11, 0.4), b1: rand(dh, 12, 0.1), w2: rand(dh * dout, 13, 0.4), b2: rand(dout, 14, 0.1) };
  const xs = rand(n * din, 15);
  const ys = oneHot(n, dout, 16);

  const train = async (): Promise<{ losses: number[]; params: Float32Array[] }> => {
    const w1 = tf.variable(tf.tensor2d(init.w1, [din, dh]));
    const b1 = tf.variable(tf.tensor1d(init.b1));
    const w2 = tf.variable(tf.tensor2d(init.w2, [dh, dout]));
    const b2 = tf.variable(tf.tensor1d(init.b2));
    const x = tf.tensor2d(xs, [n, din]);
    const y = tf.tensor2d(ys, [n, dout]);
    const opt = tf.train.adam(0.01);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const loss = opt.minimize(() => {
        const h = tf.tanh(tf.add(tf.matMul(x, w1), b1));
        const logits = tf.add(tf.matMul(h, w2), b2);
        return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      }, true)!;
      losses.push((await loss.data())[0]!);
      loss.dispose();
    }
    const params = await Promise.all([w1, b1, w2, b2].map(async (v) => (await v.data()) as Float32Array));
    opt.dispose();
    tf.dispose([w1, b1, w2, b2, x, y]);
    return { losses, params };
  };

  await initBackend('cpu');
  const cpu = await train();
  await initBackend('webgpu');
  const gpu = await train();
  t.diagnostic(`cpu losses ${cpu.losses.map((l) => l.toFixed(6)).join(' ')}`);
  t.diagnostic(`gpu losses ${gpu.losses.map((l) => l.toFixed(6)).join(' ')}`);
  assert.ok(cpu.losses.at(-1)! < cpu.losses[0]!, 'loss goes down');
  for (let i = 0; i < steps; i++) {
    const rel = Math.abs(gpu.losses[i]! - cpu.losses[i]!) / Math.abs(cpu.losses[i]!);
    assert.ok(rel <= TOL, `step ${i}: loss ${gpu.losses[i]} vs ${cpu.losses[i]} (rel ${rel})`);
  }
  assertClose(t, gpu.params, cpu.params, ['w1', 'b1', 'w2', 'b2']);
});

test('webgpu: five Adam steps of the tiny tower give the cpu backend\'s losses', async (t) => {
  if (!(await needWebgpu(t))) return;
  const cpu = await fiveTowerSteps('cpu');
  const gpu = await fiveTowerSteps('webgpu');
  cpu.losses.forEach((l, i) => assert.ok(Math.abs(l - gpu.losses[i]!) < TOL * l, `step ${i + 1}: cpu ${l} webgpu ${gpu.losses[i]}`));
  assert.ok(maxAbsDiff(cpu.wte, gpu.wte) < 1e-4, `wte differs by ${maxAbsDiff(cpu.wte, gpu.wte)}`);
  t.diagnostic(`losses cpu ${cpu.losses.map((x) => x.toFixed(5)).join(' ')} | webgpu ${gpu.losses.map((x) => x.toFixed(5)).join(' ')}`);
  await initBackend('cpu');
});
