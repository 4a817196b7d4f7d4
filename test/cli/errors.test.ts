import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latestCheckpoint } from '../../src/train/checkpoint.js';
import { runZipper, scratch, tinyPretrain } from './run-cli.js';

/** Bad input stops with a message naming the file, key or step, and loses nothing already written. */

test('unknown config key and wrong type name the key', () => {
  const { dir, corpus } = scratch(200);
  const r = runZipper([...tinyPretrain(corpus, 5), '--set', 'train.lrr=1', '--dry-run'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown config key "train\.lrr" \(did you mean "train\.lr"\?\)/);
  const t = runZipper([...tinyPretrain(corpus, 5), '--set', 'train.lr=fast', '--dry-run'], dir);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /train\.lr: expected number/);
});

test('--dry-run prints the resolved config and creates nothing', () => {
  const { dir, corpus } = scratch(200);
  const r = runZipper([...tinyPretrain(corpus, 7), '--dry-run'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /steps: 7/);
  assert.match(r.stdout, /d_model: 32/);
  assert.ok(!existsSync(join(dir, 'runs')));
});

test('a config for the wrong modality is refused, naming the file', () => {
  const { dir } = scratch(10);
  const cfg = join(dir, 'speech.yaml');
  writeFileSync(cfg, 'modality: speech\n');
  const r = runZipper(['pretrain', '--modality', 'text', '--config', cfg], dir);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(cfg) && /speech/.test(r.stderr), r.stderr);
});

test('an empty corpus and a non-UTF-8 corpus are errors naming the file', () => {
  const { dir } = scratch(10);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '\n\n  \n');
  const e = runZipper(tinyPretrain(empty, 5), dir);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /empty corpus: .*empty\.txt/);
  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  const l = runZipper(tinyPretrain(latin1, 5), dir);
  assert.equal(l.code, 1);
  assert.match(l.stderr, /latin1\.txt: not valid UTF-8/);
});

test('a NaN loss stops the run naming the step, and earlier checkpoints survive', () => {
  const { dir, corpus } = scratch(400);
  // Adam moves every weight by about lr per step: lr 1e30 overflows float32 within a few steps.
  const r = runZipper([...tinyPretrain(corpus, 50, ['train.lr=1e30', 'train.warmup_steps=0', 'train.checkpoint_every=1', 'train.clip_norm=0']), '--name', 'nan'], dir);
  assert.equal(r.code, 1);
  const m = r.stderr.match(/diverged at step (\d+)/);
  assert.ok(m, r.stderr);
  const ckpts = join(dir, 'runs', 'nan', 'checkpoints');
  const latest = latestCheckpoint(ckpts)!;
  assert.ok(latest.endsWith(String(Number(m[1]) - 1).padStart(7, '0')), `latest ${latest} for divergence at ${m[1]}`);
  const state = JSON.parse(readFileSync(join(latest, 'state.json'), 'utf8'));
  assert.ok(Number.isFinite(state.metrics.train_loss));
});

test('a truncated checkpoint is an error naming the file, for generate and for --resume', () => {
  const { dir, corpus } = scratch(400);
  const ok = runZipper([...tinyPretrain(corpus, 10, ['train.checkpoint_every=5']), '--name', 'r'], dir);
  assert.equal(ok.code, 0, ok.stderr);
  const latest = latestCheckpoint(join(dir, 'runs', 'r', 'checkpoints'))!;
  const weights = join(latest, 'model.safetensors');
  truncateSync(weights, 1000);
  const g = runZipper(['generate', '--run', join(dir, 'runs', 'r'), '--prompt', 'The', '--backend', 'wasm'], dir);
  assert.equal(g.code, 1);
  assert.ok(g.stderr.includes(`corrupt or truncated checkpoint ${weights}`), g.stderr);
  const before = readdirSync(join(dir, 'runs', 'r', 'checkpoints')).sort();
  const r = runZipper([...tinyPretrain(corpus, 20, ['train.checkpoint_every=5']), '--name', 'r', '--resume'], dir);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`corrupt or truncated checkpoint runs/r/checkpoints/${latest.split('/').pop()}/model.safetensors`), r.stderr);
  assert.deepEqual(readdirSync(join(dir, 'runs', 'r', 'checkpoints')).sort(), before, 'a failed resume changed the checkpoints');
});

test('an existing run is never overwritten without --resume', () => {
  const { dir, corpus } = scratch(300);
  assert.equal(runZipper([...tinyPretrain(corpus, 5), '--name', 'x'], dir).code, 0);
  const again = runZipper([...tinyPretrain(corpus, 5), '--name', 'x'], dir);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /--resume/);
});

test('generate writes English-like continuations from a trained checkpoint', () => {
  const { dir, corpus } = scratch(400);
  assert.equal(runZipper([...tinyPretrain(corpus, 10), '--name', 'g'], dir).code, 0);
  const g = runZipper(['generate', '--run', join(dir, 'runs', 'g'), '--prompt', 'The jury', '--num', '2', '--max-new', '8', '--backend', 'wasm'], dir);
  assert.equal(g.code, 0, g.stderr);
  const lines = g.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  for (const l of lines) assert.ok(l.startsWith('The jury'), l);
});
