import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainEngine, TrainState } from '../../src/engine/engine.js';
import { TrainConfig } from '../../src/config/schema.js';
import { trainLoop } from '../../src/train/loop.js';

/** An engine whose loss is fixed by the step: enough to drive the loop's bookkeeping. */
function fakeEngine(): TrainEngine {
  const state: TrainState = { params: new Map(), m: new Map(), v: new Map() };
  return {
    name: 'fake',
    device: 'none',
    load: async () => {},
    state: async () => state,
    trainStep: async (_b, step) => ({ loss: 1 / step, gradNorm: 1 }),
    evalLoss: async () => 1,
    call: async () => ({}),
    dropKept: async () => {},
    dispose: () => {},
  };
}

test('the loop stops early when the stage\'s evaluation says so, with a checkpoint at that step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-loop-'));
  const cfg = TrainConfig.parse({ steps: 100, eval_every: 10, checkpoint_every: 50, log_every: 10, warmup_steps: 0 });
  const devs = [3, 2, 2.5, 2.6, 1];
  const checkpoints: number[] = [];
  let evals = 0;
  const r = await trainLoop({
    engine: fakeEngine(),
    cfg,
    startStep: 0,
    batchAt: () => ({}),
    devBatches: [],
    evaluate: async () => {
      const dev = devs[evals++]!;
      // Patience 2: stop at the second evaluation without a better dev loss.
      return { metrics: { dev_loss: dev }, stop: evals >= 4 };
    },
    tokensPerBatch: (i) => i + 1,
    checkpoint: async (step) => {
      checkpoints.push(step);
    },
    metricsPath: join(dir, 'metrics.jsonl'),
    log: { info: () => {}, warn: () => {} },
    progress: { update: () => {}, stop: () => {} },
  });
  assert.equal(r.step, 40);
  assert.equal(r.stoppedEarly, true);
  assert.equal(r.interrupted, false);
  assert.deepEqual(checkpoints, [40]);
  const dev = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'dev');
  assert.deepEqual(dev.map((d) => d.dev_loss), [3, 2, 2.5, 2.6]);
  // tokens/s counts each batch's own tokens (here i + 1 for batch i).
  const train = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'train');
  assert.equal(train.length, 4);
});
