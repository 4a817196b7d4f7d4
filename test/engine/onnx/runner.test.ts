import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialState } from '../../../src/engine/engine.js';
import { OrtEngine } from '../../../src/engine/onnx/ort-engine.js';
import { OrtRunner } from '../../../src/engine/onnx/runner.js';
import { TfjsEngine } from '../../../src/engine/tfjs-engine.js';
import { lmBatch } from '../../../src/data/lm.js';
import { initParams } from '../../../src/model/params.js';
import { towerModel } from '../../../src/model/tower.js';
import { TINY, randomRows, useCpu } from '../../helpers.js';

const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1.0 };

test('providers: a missing one is recorded and the next is used; none working is a clear error', async () => {
  const r = await OrtRunner.start({ providers: ['cuda', 'cpu'] });
  r.dispose();
  assert.equal(r.provider, 'cpu');
  assert.equal(r.attempts.length, 2);
  assert.deepEqual(r.attempts.map((a) => [a.provider, a.ok]), [['cuda', false], ['cpu', true]]);
  assert.ok(r.attempts[0]!.detail.length > 0, 'the failed attempt says why');
  await assert.rejects(() => OrtRunner.start({ providers: ['cuda'] }), /no onnxruntime execution provider works: cuda: /);
});

test('providers: the default list ends on a working one and onnxruntime prints nothing', () => {
  const runner = new URL('../../../src/engine/onnx/runner.js', import.meta.url).href;
  const script = `const { OrtRunner } = await import(${JSON.stringify(runner)});
    const r = await OrtRunner.start();
    console.log(JSON.stringify({ provider: r.provider, attempts: r.attempts }));
    r.dispose();`;
  const p = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stderr, '', 'stderr noise');
  const { provider, attempts } = JSON.parse(p.stdout) as { provider: string; attempts: { provider: string; ok: boolean; detail: string }[] };
  assert.deepEqual(attempts.at(-1), { provider, ok: true, detail: 'ok' });
  assert.deepEqual(attempts.map((a) => a.provider), ['cuda', 'webgpu', 'cpu'].slice(0, attempts.length));
  for (const a of attempts.slice(0, -1)) assert.ok(!a.ok && a.detail, JSON.stringify(a));
});

test('ort engine: eval loss equals tfjs, device names the provider, state round-trips', async () => {
  await useCpu();
  const model = towerModel(TINY);
  const p0 = initParams(model.specs, 2);
  const batch = lmBatch(randomRows(2, 9, TINY.vocab_size, 4));
  const ref = new TfjsEngine(model, OPT);
  await ref.load(initialState(model, p0));
  const eng = new OrtEngine(model, OPT, { providers: ['cpu'] });
  assert.equal(eng.device, 'not started');
  await eng.load(initialState(model, p0));
  assert.equal(eng.device, 'cpu');
  const [a, b] = [await ref.evalLoss(batch), await eng.evalLoss(batch)];
  assert.ok(Math.abs(a - b) <= 1e-5 * a, `eval loss ${b} vs ${a}`);
  const s = await eng.state();
  assert.deepEqual([...s.params.keys()], model.specs.map((x) => x.name));
  for (const [k, v] of s.params) assert.deepEqual(v, p0.get(k));
  ref.dispose();
  eng.dispose();
  await assert.rejects(() => eng.evalLoss(batch), /disposed|empty/);
});

test('ort engine: trainStep before load and a bad state are clear errors', async () => {
  const model = towerModel(TINY);
  const eng = new OrtEngine(model, OPT, { providers: ['cpu'] });
  await assert.rejects(() => eng.trainStep(lmBatch(randomRows(1, 5, TINY.vocab_size)), 1, 1e-3), /slot "params" is empty/);
  const p = initParams(model.specs, 1);
  p.delete('h.1.mlp.fc_in.weight');
  await assert.rejects(() => eng.load({ params: p, m: new Map(), v: new Map() }), /training state has no tensor "h.1.mlp.fc_in.weight"/);
  eng.dispose();
});

test('ort engine: the main thread keeps running while a step computes', async () => {
  // The reference tower: a step takes a few hundred ms, long enough to count timer ticks in.
  const model = towerModel({ d_model: 128, n_layers: 4, n_heads: 4, ff_mult: 4, max_len: 128, vocab_size: 512 });
  const eng = new OrtEngine(model, OPT, { providers: ['cpu'] });
  await eng.load(initialState(model, initParams(model.specs, 0)));
  const batch = lmBatch(randomRows(16, 129, 512));
  await eng.trainStep(batch, 1, 1e-3); // compile and warm up
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  await eng.trainStep(batch, 2, 1e-3);
  const ms = performance.now() - t0;
  clearInterval(timer);
  eng.dispose();
  // On the main thread the step would block every tick; in the worker most of them fire.
  assert.ok(ms > 50 && ticks >= Math.floor(ms / 5 / 4), `${ticks} ticks during a ${ms.toFixed(0)} ms step`);
});

test('ort engine: graphs cached on disk by model and batch shape; a corrupt file is rebuilt', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-ort-'));
  try {
    const model = towerModel(TINY);
    const st = () => initialState(model, initParams(model.specs, 3));
    const b1 = lmBatch(randomRows(2, 9, TINY.vocab_size, 4));
    const e1 = new OrtEngine(model, OPT, { providers: ['cpu'], cacheDir: dir });
    await e1.load(st());
    const l1 = await e1.evalLoss(b1);
    e1.dispose();
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^[0-9a-f]{24}\.onnx$/);
    const mtime = statSync(join(dir, files[0]!)).mtimeMs;
    // Same model and shapes: the file is reused as it is; another shape adds a file.
    const e2 = new OrtEngine(model, OPT, { providers: ['cpu'], cacheDir: dir });
    await e2.load(st());
    assert.equal(await e2.evalLoss(b1), l1);
    assert.equal(statSync(join(dir, files[0]!)).mtimeMs, mtime);
    await e2.evalLoss(lmBatch(randomRows(3, 9, TINY.vocab_size, 4)));
    assert.equal(readdirSync(dir).length, 2);
    e2.dispose();
    writeFileSync(join(dir, files[0]!), 'not a graph');
    const e3 = new OrtEngine(model, OPT, { providers: ['cpu'], cacheDir: dir });
    await e3.load(st());
    assert.equal(await e3.evalLoss(b1), l1);
    assert.ok(statSync(join(dir, files[0]!)).size > 1000, 'rebuilt');
    e3.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
