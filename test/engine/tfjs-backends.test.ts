import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backends.js';
import { TINY, fiveTowerSteps, maxAbsDiff } from '../helpers.js';

test('wasm backend trains the tower like the cpu backend (embedding gradient without UnsortedSegmentSum)', async () => {
  const cpu = await fiveTowerSteps('cpu');
  const wasm = await fiveTowerSteps('wasm');
  assert.ok(Math.abs(cpu.losses[0]! - Math.log(TINY.vocab_size)) < 0.2, `first loss ${cpu.losses[0]}`);
  cpu.losses.forEach((l, i) => assert.ok(Math.abs(l - wasm.losses[i]!) < 1e-4 * l, `step ${i + 1}: cpu ${l} wasm ${wasm.losses[i]}`));
  assert.ok(maxAbsDiff(cpu.wte, wasm.wte) < 1e-5, `wte differs by ${maxAbsDiff(cpu.wte, wasm.wte)}`);
  await initBackend('cpu');
});
