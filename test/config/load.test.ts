import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, formatConfig, loadConfig } from '../../src/config/load.js';
import { hashOf, stableStringify } from '../../src/config/hash.js';

const Schema = z.object({
  name: z.string().default('run'),
  seed: z.number().int().default(0),
  model: z
    .object({
      dim: z.number().int().positive().default(64),
      layers: z.number().int().default(2),
      activation: z.enum(['gelu', 'relu']).default('gelu'),
    })
    .default({ dim: 64, layers: 2, activation: 'gelu' }),
  train: z
    .object({
      lr: z.number().default(1e-3),
      steps: z.number().int().default(100),
      schedule: z.array(z.number()).default([0.5, 0.9]),
      warmup: z.number().nullable().default(null),
    })
    .prefault({ steps: 200 }), // zod 4: prefault takes a partial object
  tags: z.record(z.string(), z.string()).default({}),
});

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'zipper-load-'));
}

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function throwsConfig(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    for (const part of parts) assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(part)}`);
    return true;
  });
}

test('defaults fill nested objects, including container defaults', () => {
  const cfg = loadConfig(Schema, {});
  assert.deepEqual(cfg, {
    name: 'run',
    seed: 0,
    model: { dim: 64, layers: 2, activation: 'gelu' },
    train: { lr: 1e-3, steps: 200, schedule: [0.5, 0.9], warmup: null },
    tags: {},
  });
});

test('merge order: defaults < base < extended files < file < --set; arrays replace', () => {
  const dir = tempDir();
  write(dir, 'root.yaml', 'model: {dim: 8, layers: 3}\ntrain: {schedule: [1, 2, 3]}\n');
  write(dir, 'mid.yaml', 'extends: root.yaml\nmodel: {dim: 16}\ntags: {a: mid}\n');
  write(dir, 'other.yaml', 'tags: {b: other, a: other}\n');
  fs.mkdirSync(path.join(dir, 'exp'));
  const file = write(dir, 'exp/run.yaml', 'extends: [../mid.yaml, ../other.yaml]\nseed: 7\ntrain: {schedule: [4]}\n');
  const cfg = loadConfig(Schema, {
    file,
    base: { name: 'base', seed: 1, model: { activation: 'relu' } },
    sets: ['seed=9', 'train.lr=1e-4'],
  });
  assert.equal(cfg.name, 'base');
  assert.equal(cfg.seed, 9);
  assert.deepEqual(cfg.model, { dim: 16, layers: 3, activation: 'relu' });
  assert.deepEqual(cfg.train.schedule, [4]);
  assert.equal(cfg.train.lr, 1e-4);
  assert.equal(cfg.train.steps, 200);
  assert.deepEqual(cfg.tags, { a: 'other', b: 'other' });
});

test('extends cycle is reported with the chain', () => {
  const dir = tempDir();
  write(dir, 'a.yaml', 'extends: b.yaml\nseed: 1\n');
  write(dir, 'b.yaml', 'extends: c.yaml\n');
  write(dir, 'c.yaml', 'extends: a.yaml\n');
  throwsConfig(() => loadConfig(Schema, { file: path.join(dir, 'a.yaml') }), 'cycle', 'a.yaml -> ', 'b.yaml -> ', 'c.yaml -> ');
});

test('a diamond of extends is not a cycle', () => {
  const dir = tempDir();
  write(dir, 'base.yaml', 'seed: 3\n');
  write(dir, 'l.yaml', 'extends: base.yaml\n');
  write(dir, 'r.yaml', 'extends: base.yaml\n');
  const file = write(dir, 'top.yaml', 'extends: [l.yaml, r.yaml]\n');
  assert.equal(loadConfig(Schema, { file }).seed, 3);
});

test('--set values are parsed as YAML', () => {
  const cfg = loadConfig(Schema, {
    sets: ['model.dim=3', 'train.lr=1e-3', 'train.schedule=[1,2]', 'train.warmup=null', 'name=x', 'tags.k="true"', 'model.activation=relu'],
  });
  assert.equal(cfg.model.dim, 3);
  assert.equal(cfg.train.lr, 0.001);
  assert.deepEqual(cfg.train.schedule, [1, 2]);
  assert.equal(cfg.train.warmup, null);
  assert.equal(cfg.name, 'x');
  assert.equal(cfg.model.activation, 'relu');
  assert.equal(cfg.tags.k, 'true');
  // tags are strings: `true` parses as a boolean and is rejected, naming the --set.
  throwsConfig(() => loadConfig(Schema, { sets: ['tags.k=true'] }), '--set tags.k=true', 'tags.k: expected string, received boolean true');
  throwsConfig(() => loadConfig(Schema, { sets: ['seed'] }), 'key=value');
  const warm = loadConfig(Schema, { sets: ['train.warmup=10'] });
  assert.equal(warm.train.warmup, 10);
  // a whole object can be set; its keys are checked too
  assert.equal(loadConfig(Schema, { sets: ['model={dim: 5}'] }).model.dim, 5);
  throwsConfig(() => loadConfig(Schema, { sets: ['model={dimm: 5}'] }), 'unknown config key "model.dimm" (did you mean "model.dim"?)');
});

test('unknown --set key names the key and close matches', () => {
  throwsConfig(() => loadConfig(Schema, { sets: ['train.lrr=1'] }), 'unknown config key "train.lrr" (did you mean "train.lr"?)');
  throwsConfig(() => loadConfig(Schema, { sets: ['trian.steps=1'] }), 'unknown config key "trian.steps" (did you mean "train.steps"?)');
  throwsConfig(() => loadConfig(Schema, { sets: ['lr=1'] }), 'unknown config key "lr" (did you mean "train.lr"?)');
  throwsConfig(() => loadConfig(Schema, { sets: ['train.lr.x=1'] }), 'unknown config key "train.lr.x"');
  throwsConfig(() => loadConfig(Schema, { sets: ['zzzzzz=1'] }), 'unknown config key "zzzzzz"');
});

test('unknown key in a file names the file, the key path and a suggestion', () => {
  const dir = tempDir();
  const file = write(dir, 'x.yaml', 'train:\n  lrr: 0.1\n');
  throwsConfig(() => loadConfig(Schema, { file }), 'x.yaml: unknown key "train.lrr" (did you mean "train.lr"?)');
  const parent = write(dir, 'p.yaml', 'modle: {dim: 3}\n');
  const child = write(dir, 'c.yaml', `extends: ${path.basename(parent)}\n`);
  throwsConfig(() => loadConfig(Schema, { file: child }), 'p.yaml: unknown key "modle"', '"model"');
});

test('wrong types name the key path, expected type, received value and file', () => {
  const dir = tempDir();
  const file = write(dir, 'bad.yaml', 'train:\n  lr: abc\n');
  throwsConfig(() => loadConfig(Schema, { file }), 'bad.yaml: train.lr: expected number, received string "abc"');
  throwsConfig(() => loadConfig(Schema, { sets: ['train.lr=abc'] }), '--set train.lr=abc: train.lr: expected number, received string "abc"');
  throwsConfig(() => loadConfig(Schema, { sets: ['model.activation=tanh'] }), 'model.activation: expected "gelu" | "relu", received string "tanh"');
  throwsConfig(() => loadConfig(Schema, { sets: ['model.dim=-1'] }), 'model.dim: too small', '-1');
  throwsConfig(() => loadConfig(Schema, { base: { seed: 1.5 } }), 'base config: seed:', '1.5');
});

test('a required key with no default is reported as missing', () => {
  const Required = z.object({ data: z.object({ path: z.string() }) });
  throwsConfig(() => loadConfig(Required, {}), 'data: missing (expected object)');
  throwsConfig(() => loadConfig(Required, { sets: ['data={}'] }), 'data.path: missing (expected string)');
});

test('missing files are named', () => {
  const dir = tempDir();
  throwsConfig(() => loadConfig(Schema, { file: path.join(dir, 'nope.yaml') }), 'config file not found', 'nope.yaml');
  const file = write(dir, 'child.yaml', 'extends: gone.yaml\n');
  throwsConfig(() => loadConfig(Schema, { file }), 'child.yaml: extends "gone.yaml": config file not found', 'gone.yaml');
});

test('YAML syntax errors name the file and line', () => {
  const dir = tempDir();
  const file = write(dir, 'broken.yaml', 'seed: 1\nmodel:\n  dim: [1, 2\nname: x\n');
  throwsConfig(() => loadConfig(Schema, { file }), 'broken.yaml: YAML syntax error at line');
  const dup = write(dir, 'dup.yaml', 'seed: 1\nseed: 2\n');
  throwsConfig(() => loadConfig(Schema, { file: dup }), 'dup.yaml: YAML syntax error at line 2');
  const list = write(dir, 'list.yaml', '- 1\n- 2\n');
  throwsConfig(() => loadConfig(Schema, { file: list }), 'list.yaml: expected a mapping');
});

test('loose objects and records accept any key; unions are walked', () => {
  const Loose = z.object({
    extra: z.looseObject({ known: z.number().default(1) }).prefault({}),
    opt: z
      .discriminatedUnion('kind', [z.object({ kind: z.literal('adam'), beta: z.number() }), z.object({ kind: z.literal('sgd'), momentum: z.number() })])
      .optional(),
  });
  const cfg = loadConfig(Loose, { sets: ['extra.whatever=2', 'opt={kind: sgd, momentum: 0.9}'] });
  assert.deepEqual(cfg.extra, { known: 1, whatever: 2 });
  assert.deepEqual(cfg.opt, { kind: 'sgd', momentum: 0.9 });
  throwsConfig(() => loadConfig(Loose, { sets: ['opt={kind: sgd, momentun: 0.9}'] }), 'unknown config key "opt.momentun"', '"opt.momentum"');
});

test('formatConfig round-trips through loadConfig', () => {
  const dir = tempDir();
  const cfg = loadConfig(Schema, { sets: ['train.lr=1e-4', 'name="1e-3"', 'tags.x=y'] });
  const file = write(dir, 'resolved.yaml', formatConfig(cfg));
  assert.deepEqual(loadConfig(Schema, { file }), cfg);
  assert.equal(loadConfig(Schema, { file }).name, '1e-3');
});

test('hashOf is stable under key order and distinguishes values', () => {
  const a = { b: 1, a: { y: [1, { q: 2, p: 1 }], x: 'z' } };
  const b = { a: { x: 'z', y: [1, { p: 1, q: 2 }] }, b: 1 };
  assert.equal(stableStringify(a), stableStringify(b));
  assert.equal(hashOf(a), hashOf(b));
  assert.match(hashOf(a), /^[0-9a-f]{16}$/);
  assert.notEqual(hashOf({ x: 1 }), hashOf({ x: 2 }));
  assert.notEqual(hashOf({ x: Number.NaN }), hashOf({ x: null }));
  assert.equal(stableStringify({ u: undefined, n: null }), '{"n":null}');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => stableStringify(cyclic), /cycle/);
});
