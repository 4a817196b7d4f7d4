import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from '../../src/decode/sample.js';
import { OrtTowerDecoder } from '../../src/engine/onnx/ort-decoder.js';
import { readExportMetadata } from '../../src/export/onnx.js';
import { ExportedTowerDecoder } from '../../src/export/runtime.js';
import { loadTowerSource } from '../../src/export/source.js';
import { TextTokenizer } from '../../src/tokenizers/text.js';
import { encodeSafetensors, readSafetensors } from '../../src/train/safetensors.js';
import { runExport, tinyRun } from './run-export.js';

let t: ReturnType<typeof tinyRun>;
before(() => {
  t = tinyRun();
});

test('zipper export writes a verified file; its greedy decodes equal generate() with the engine', async () => {
  const r = runExport(['--run', 'runs/t'], t.dir);
  assert.equal(r.code, 0, r.stderr);
  const file = join(t.run, 'export', 'tower.onnx');
  assert.match(r.stdout, /^exported runs\/t\/export\/tower\.onnx \(\d+\.\d KiB\)$/m);
  assert.match(r.stdout, /tower \(text, step 12\): 27,776 parameters, d_model 32, 2 layers, 2 heads, vocab 300, KV cache 32 positions, batch 1/);
  assert.match(r.stdout, /verified: prompt \+ 8 greedy steps match ort .*max \|logit diff\| /);
  const m = readExportMetadata(file);
  assert.equal(m.step, 12);
  assert.equal(m.checkpoint, t.checkpoint);
  assert.equal(m.tokenizer, readFileSync(join(t.checkpoint, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(m.specials, { pad: 0, bos: 1, eos: 2 });
  assert.deepEqual(m.kvCache, { batch: 1, layers: 2, heads: 2, head_dim: 16, capacity: 32, align: 'right', masked: -1e9 });

  // As a user would: tokenizer and specials from the file's metadata, decoding with the file alone.
  const tok = TextTokenizer.fromJSON(m.tokenizer!);
  const prompt = [m.specials.bos, ...(await tok.encode('The jury said'))];
  const o = { maxNewTokens: 20, temperature: 0, topK: 0, stopToken: m.specials.eos, seed: 0 };
  const exported = await ExportedTowerDecoder.open(file);
  const src = loadTowerSource(t.checkpoint);
  const engine = new OrtTowerDecoder(src.params, src.shape, { providers: ['cpu'] });
  try {
    const got = await generate(exported, [prompt], o);
    assert.deepEqual(got, await generate(engine, [prompt], o));
    assert.ok(got[0]!.length > 0);
    console.log(`# exported file continues "The jury said" with ${JSON.stringify(await tok.decode([...prompt, ...got[0]!]))}`);
  } finally {
    exported.dispose();
    engine.dispose();
  }
});

test('a checkpoint folder exports next to its run; --out and --batch are honoured', () => {
  const rel = join('runs', 't', 'checkpoints', 'step-0000012');
  const r = runExport(['--run', rel, '--no-verify'], t.dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exported runs\/t\/export\/tower\.onnx/);
  assert.match(r.stdout, /not verified/);
  const out = join(t.dir, 'elsewhere', 'b2.onnx');
  const b = runExport(['--run', 'runs/t', '--out', out, '--batch', '2'], t.dir);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(readExportMetadata(out).kvCache.batch, 2);
  assert.match(b.stdout, /batch 2; .*\nverified/);
});

/** A failing export prints one clear line, exits 1, and leaves an earlier export untouched. */
function refused(args: string[], pattern: RegExp): void {
  const out = join(t.dir, 'keep.onnx');
  writeFileSync(out, 'an earlier export');
  const r = runExport([...args, '--out', out], t.dir);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace');
  assert.equal(readFileSync(out, 'utf8'), 'an earlier export');
}

/** A copy of the checkpoint to break. */
function brokenCheckpoint(name: string, breakIt: (dir: string) => void): string {
  const dir = join(t.dir, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(t.checkpoint, dir, { recursive: true });
  breakIt(dir);
  return dir;
}

test('an unknown format is refused before anything is read', () => {
  refused(['--run', 'runs/t', '--format', 'tflite'], /zipper: unknown export format "tflite" \(expected onnx\)/);
  refused(['--run', 'no/such/run', '--format', 'tflite'], /unknown export format/);
});

test('a checkpoint without a complete set of weights is refused, naming the file and the tensor', () => {
  const missing = brokenCheckpoint('ck-missing', (dir) => {
    const f = join(dir, 'model.safetensors');
    const all = [...readSafetensors(f).tensors.values()].filter((a) => a.name !== 'h.1.mlp.fc_out.bias');
    writeFileSync(f, encodeSafetensors(all));
  });
  refused(['--run', missing], new RegExp(`checkpoint ${join(missing, 'model.safetensors')} has no tensor "h\\.1\\.mlp\\.fc_out\\.bias" \\(incomplete weights`));
  const misshapen = brokenCheckpoint('ck-shape', (dir) => {
    const f = join(dir, 'model.safetensors');
    const all = [...readSafetensors(f).tensors.values()].map((a) => (a.name === 'wpe.weight' ? { ...a, shape: [16, 32], data: a.data.slice(0, 512) } : a));
    writeFileSync(f, encodeSafetensors(all));
  });
  refused(['--run', misshapen], /tensor "wpe\.weight" has shape \[16,32\], the model needs \[32,32\]/);
  const noWeights = brokenCheckpoint('ck-none', (dir) => rmSync(join(dir, 'model.safetensors')));
  refused(['--run', noWeights], /cannot read checkpoint .*ck-none\/model\.safetensors/);
  const truncated = brokenCheckpoint('ck-trunc', (dir) => {
    const f = join(dir, 'model.safetensors');
    writeFileSync(f, readFileSync(f).subarray(0, statSync(f).size - 100));
  });
  refused(['--run', truncated], /corrupt or truncated checkpoint .*ck-trunc\/model\.safetensors/);
});

test('a checkpoint without its tokenizer or config, a run without checkpoints, a bad batch: clear errors', () => {
  const noTok = brokenCheckpoint('ck-notok', (dir) => rmSync(join(dir, 'tokenizer.json')));
  refused(['--run', noTok], /ck-notok has no tokenizer\.json/);
  const noCfg = brokenCheckpoint('ck-nocfg', (dir) => rmSync(join(dir, 'config.yaml')));
  refused(['--run', noCfg], /ck-nocfg has no config\.yaml/);
  refused(['--run', t.dir], /has no checkpoint yet/);
  refused(['--run', 'runs/t', '--batch', '0'], /--batch must be a positive integer, got 0/);
  assert.ok(!existsSync(join(t.dir, 'ck-notok', 'export')));
});
