import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { assertSameConfig, createRunDir, saveResolvedConfig } from '../../src/run/rundir.js';

function tempRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'zipper-runs-'));
}

const cfg = { model: { dim: 8, layers: 2 }, train: { lr: 0.001, steps: 100, schedule: [1, 2] }, seed: 1 };

test('a named run gets its directory and paths', async () => {
  const root = tempRoot();
  const run = createRunDir(root, 'exp1', { resume: false, prefix: 'train' });
  assert.equal(run.dir, path.join(root, 'exp1'));
  assert.equal(run.configPath, path.join(root, 'exp1', 'config.yaml'));
  assert.equal(run.envPath, path.join(root, 'exp1', 'env.json'));
  assert.equal(run.logPath, path.join(root, 'exp1', 'log.jsonl'));
  assert.equal(run.metricsPath, path.join(root, 'exp1', 'metrics.jsonl'));
  assert.ok(fs.statSync(run.checkpointsDir).isDirectory());
  assert.equal(run.resumed, false);
  await saveResolvedConfig(run, cfg);
  assert.deepEqual(YAML.parse(fs.readFileSync(run.configPath, 'utf8')), cfg);
});

test('an unnamed run gets <prefix>-<YYYYMMDD-HHMMSS>, unique', () => {
  const root = tempRoot();
  const a = createRunDir(root, undefined, { resume: false, prefix: 'pretrain' });
  const b = createRunDir(root, undefined, { resume: false, prefix: 'pretrain' });
  assert.match(a.name, /^pretrain-\d{8}-\d{6}$/);
  assert.notEqual(a.dir, b.dir);
  assert.throws(() => createRunDir(root, undefined, { resume: true, prefix: 'x' }), /--resume needs --name/);
});

test('refuses to clobber a previous run without --resume', async () => {
  const root = tempRoot();
  const run = createRunDir(root, 'exp', { resume: false, prefix: 'train' });
  // No config or checkpoint yet: a run that died early may be reused.
  createRunDir(root, 'exp', { resume: false, prefix: 'train' });
  await saveResolvedConfig(run, cfg);
  assert.throws(() => createRunDir(root, 'exp', { resume: false, prefix: 'train' }), /--resume.*--name/s);
  assert.deepEqual(YAML.parse(fs.readFileSync(run.configPath, 'utf8')), cfg);

  const ckptOnly = createRunDir(root, 'ck', { resume: false, prefix: 'train' });
  fs.writeFileSync(path.join(ckptOnly.checkpointsDir, 'step-10.safetensors'), '');
  assert.throws(() => createRunDir(root, 'ck', { resume: false, prefix: 'train' }), /checkpoints/);
});

test('resume reopens an existing run; resume of a new name starts fresh', async () => {
  const root = tempRoot();
  const run = createRunDir(root, 'exp', { resume: false, prefix: 'train' });
  await saveResolvedConfig(run, cfg);
  const again = createRunDir(root, 'exp', { resume: true, prefix: 'train' });
  assert.equal(again.dir, run.dir);
  assert.equal(again.resumed, true);
  assert.equal(createRunDir(root, 'new', { resume: true, prefix: 'train' }).resumed, false);
});

test('bad names are rejected', () => {
  const root = tempRoot();
  for (const name of ['../escape', '/abs', 'a/../b', 'a//b']) {
    assert.throws(() => createRunDir(root, name, { resume: false, prefix: 'x' }), /bad run name/, name);
  }
  assert.equal(createRunDir(root, 'group/a', { resume: false, prefix: 'x' }).dir, path.join(root, 'group', 'a'));
});

test('assertSameConfig lists differing keys and honours ignored keys', async () => {
  const root = tempRoot();
  const run = createRunDir(root, 'exp', { resume: false, prefix: 'train' });
  await saveResolvedConfig(run, cfg);
  assertSameConfig(run, structuredClone(cfg), []);
  // key order does not matter
  assertSameConfig(run, { seed: 1, train: { steps: 100, schedule: [1, 2], lr: 0.001 }, model: { layers: 2, dim: 8 } }, []);

  const longer = { ...cfg, train: { ...cfg.train, steps: 500 } };
  assertSameConfig(run, longer, ['train.steps']);
  assert.throws(() => assertSameConfig(run, longer, []), /train\.steps: 100 -> 500/);

  const changed = { ...cfg, model: { dim: 16, layers: 2, heads: 4 }, train: { ...cfg.train, schedule: [1], steps: 500 } };
  assert.throws(
    () => assertSameConfig(run, changed, ['train']),
    (err: Error) => {
      assert.match(err.message, /2 key/);
      assert.match(err.message, /model\.dim: 8 -> 16/);
      assert.match(err.message, /model\.heads: \(absent\) -> 4/);
      assert.doesNotMatch(err.message, /train/);
      return true;
    },
  );
  assertSameConfig(run, { ...cfg, model: { dim: 16, layers: 3 } }, ['model']);
});

test('assertSameConfig with a schema: a key added since the run was saved counts as its default', async () => {
  const root = tempRoot();
  const run = createRunDir(root, 'old', { resume: false, prefix: 'train' });
  await saveResolvedConfig(run, cfg);
  const schema = z.object({ seed: z.number(), model: z.object({ dim: z.number(), layers: z.number(), norm: z.boolean().default(false) }), train: z.record(z.string(), z.unknown()) });
  const now = { ...cfg, model: { ...cfg.model, norm: false } };
  assert.throws(() => assertSameConfig(run, now, []), /model\.norm: \(absent\) -> false/);
  assertSameConfig(run, now, [], schema);
  // A new key set to something other than its default is still a different experiment.
  assert.throws(() => assertSameConfig(run, { ...cfg, model: { ...cfg.model, norm: true } }, [], schema), /model\.norm: false -> true/);
  // A saved config the schema now rejects is named.
  const strict = z.object({ seed: z.string() }).passthrough();
  assert.throws(() => assertSameConfig(run, now, [], strict), (e: Error) => e.message.includes(run.configPath) && /no longer valid/.test(e.message));
});
