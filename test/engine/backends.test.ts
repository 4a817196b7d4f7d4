import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND_NAMES, describeBackend, initBackend, tf } from '../../src/engine/backends.js';

async function tinyOp(): Promise<number[]> {
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [1]])));
  const v = Array.from(await y.data());
  y.dispose();
  return v;
}

test('explicit cpu: initialises and runs an op', async () => {
  const c = await initBackend('cpu');
  assert.equal(c.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(c.reason, 'requested explicitly');
  assert.deepEqual(c.attempts, [{ name: 'cpu', ok: true, detail: 'ok' }]);
  assert.deepEqual(await tinyOp(), [3, 7]);
});

test('explicit wasm: initialises (SIMD reported) and runs an op', async () => {
  const c = await initBackend('wasm');
  assert.equal(c.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(c.attempts[0]!.detail, /SIMD (on|off)/);
  assert.deepEqual(await tinyOp(), [3, 7]);
  // switching back and forth works
  await initBackend('cpu');
  assert.equal(tf.getBackend(), 'cpu');
  await initBackend('wasm');
  assert.deepEqual(await tinyOp(), [3, 7]);
});

test('auto: picks a working backend and records every attempt in order', async () => {
  const c = await initBackend('auto');
  assert.ok(BACKEND_NAMES.includes(c.name));
  assert.equal(tf.getBackend(), c.name);
  assert.equal(c.attempts[0]!.name, 'tensorflow');
  const order = c.attempts.map((a) => a.name);
  assert.deepEqual(order, BACKEND_NAMES.slice(0, order.length));
  assert.equal(c.attempts.at(-1)!.name, c.name);
  assert.ok(c.attempts.at(-1)!.ok);
  for (const a of c.attempts.slice(0, -1)) {
    assert.equal(a.ok, false);
    assert.ok(a.detail.length > 0, `${a.name} failure has a reason`);
  }
  if (c.name !== 'tensorflow') {
    // Here (no libtensorflow) the failure names the missing binding or package.
    assert.match(c.attempts[0]!.detail, /tfjs-node/);
  }
  if (c.name === 'webgpu') assert.ok(c.adapter);
  const webgpu = c.attempts.find((a) => a.name === 'webgpu');
  if (webgpu && !webgpu.ok && /software/.test(webgpu.detail)) assert.match(webgpu.detail, /slower than wasm|no GPU device node/);
  assert.match(describeBackend(c), new RegExp(`^tfjs backend ${c.name}`));
  assert.deepEqual(await tinyOp(), [3, 7]);
});

test('explicit tensorflow without libtensorflow: throws clearly, tfjs stays usable', async (t) => {
  await initBackend('cpu');
  let choice;
  try {
    choice = await initBackend('tensorflow');
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(msg, /backend 'tensorflow' is not available/);
    assert.match(msg, /tfjs-node/);
    assert.match(msg, /left on 'cpu'/);
    assert.equal(tf.getBackend(), 'cpu');
    assert.ok(!tf.findBackendFactory('tensorflow'), 'the failed backend is not left registered');
    assert.deepEqual(await tinyOp(), [3, 7]);
    // and asking again fails the same way (cached), still usable
    await assert.rejects(initBackend('tensorflow'), /tensorflow/);
    assert.deepEqual(await tinyOp(), [3, 7]);
    return;
  }
  t.skip(`libtensorflow works on this machine (${describeBackend(choice)})`);
});

test('unknown backend name is rejected', async () => {
  await assert.rejects(initBackend('metal' as never), /unknown tfjs backend 'metal'/);
  assert.deepEqual(await tinyOp(), [3, 7]);
});
