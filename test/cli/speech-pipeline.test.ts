import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAudio } from '../../src/data/audio.js';
import { projectRoot } from '../../src/cli/common.js';
import { runZipper } from './run-cli.js';

const cfg = (name: string) => join(projectRoot(), 'configs', name);

test('speech pipeline: data synth -> tokenize -> pretrain --modality speech -> generate writes audio', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-speech-'));
  const synth = runZipper(['data', 'synth', '--config', cfg('data-tiny.yaml'), '--set', 'root=corpus'], dir);
  assert.equal(synth.code, 0, synth.stderr);
  const tok = runZipper(['tokenize', '--corpus', 'corpus', '--config', cfg('tokenize-tiny.yaml')], dir);
  assert.equal(tok.code, 0, tok.stderr);
  const sets = ['data.source=corpus/tokens', 'data.seq_len=32', 'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 64}', 'train.batch_tokens=256', 'train.steps=80', 'train.warmup_steps=8', 'train.eval_every=40', 'train.eval_batches=2'];
  const pre = runZipper(['pretrain', '--modality', 'speech', '--name', 'sp', ...sets.flatMap((s) => ['--set', s])], dir);
  assert.equal(pre.code, 0, pre.stderr);
  // The tower must beat a unigram model of the units on held-out speech (dev-clean).
  const summary = JSON.parse(readFileSync(join(dir, 'runs', 'sp', 'summary.json'), 'utf8'));
  assert.ok(summary.dev_ppl < summary.unigram_dev_ppl * 0.8, `dev ppl ${summary.dev_ppl} vs unigram ${summary.unigram_dev_ppl}`);
  assert.match(pre.stdout, /dev bits +\d/);
  const ckpt = join(dir, 'runs', 'sp', 'checkpoints');
  const latest = readdirSync(ckpt).filter((d) => d.startsWith('step-')).sort().pop()!;
  assert.ok(existsSync(join(ckpt, latest, 'speech-tokenizer.json')), 'the checkpoint carries its speech tokenizer');

  const gen = runZipper(['generate', '--run', join('runs', 'sp'), '--num', '2', '--max-new', '40', '--out', 'samples'], dir);
  assert.equal(gen.code, 0, gen.stderr);
  const wavs = readdirSync(join(dir, 'samples')).filter((f) => f.endsWith('.wav'));
  assert.equal(wavs.length, 2);
  for (const w of wavs) {
    const units = JSON.parse(readFileSync(join(dir, 'samples', w.replace('.wav', '.units.json')), 'utf8')) as number[];
    const audio = readAudio(join(dir, 'samples', w));
    assert.equal(audio.sampleRate, 16000);
    // 40 ms of audio per unit (25 units a second), give or take the Griffin-Lim frame edges.
    if (units.length > 2) assert.ok(Math.abs(audio.samples.length / 640 - units.length) <= 2, `${units.length} units, ${audio.samples.length} samples`);
  }
  const refuse = runZipper(['generate', '--run', join('runs', 'sp'), '--prompt', 'hello'], dir);
  assert.equal(refuse.code, 1);
  assert.match(refuse.stderr, /--prompt is text/);
});
