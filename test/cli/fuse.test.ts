import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/cli/common.js';
import { readSafetensors } from '../../src/train/safetensors.js';
import { readManifest } from '../../src/data/manifest.js';
import { brownSentences } from '../../src/data/text.js';
import { runZipper, tinyPretrain } from './run-cli.js';

/**
 * The fine-tuning stage end to end on the tiny built-in corpus: tiny towers, a few steps, then the
 * checks the issue asks for (inputs that do not fit together fail before training; frozen towers
 * stay put; resume is exact; generate transcribes and speaks).
 */
const cfg = (name: string) => join(projectRoot(), 'configs', name);
let dir = '';

const FUSE_SETS = ['data.corpus=corpus', 'data.dev_utterances=16', 'train.batch_size=4', 'train.steps=12', 'train.warmup_steps=2', 'train.eval_every=6', 'train.checkpoint_every=6', 'train.log_every=3', 'zip.layers=1', 'zip.gate_init=0.3'];
const fuse = (name: string, extra: string[] = [], sets: string[] = []) =>
  runZipper(['fuse', '--text', 'runs/text', '--speech', 'runs/speech', '--name', name, '--no-progress', ...extra, ...[...FUSE_SETS, ...sets].flatMap((s) => ['--set', s])], dir);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zipper-fuse-'));
  const steps = [
    ['data', 'synth', '--config', cfg('data-tiny.yaml'), '--set', 'root=corpus'],
    ['tokenize', '--corpus', 'corpus', '--config', cfg('tokenize-tiny.yaml')],
    ['pretrain', '--modality', 'speech', '--name', 'speech', '--no-progress', ...['data.source=corpus/tokens', 'data.seq_len=32', 'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 192}', 'train.batch_tokens=256', 'train.steps=20', 'train.eval_every=20', 'train.eval_batches=1'].flatMap((s) => ['--set', s])],
  ];
  for (const s of steps) {
    const r = runZipper(s, dir);
    assert.equal(r.code, 0, `${s.slice(0, 2).join(' ')}: ${r.stderr}`);
  }
  // The text tower reads Brown (the tiny corpus's sentences come from it).
  const corpus = join(dir, 'brown.txt');
  writeFileSync(corpus, brownSentences().slice(0, 3000).join('\n') + '\n');
  const text = runZipper([...tinyPretrain(corpus, 20, ['model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 64}', 'data.dev_fraction=0.2']), '--name', 'text'], dir);
  assert.equal(text.code, 0, text.stderr);
});

test('zipper fuse: trains the zipper, keeps the best checkpoint, and leaves the frozen text tower byte for byte', () => {
  const r = fuse('zip', ['--freeze', 'text']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /model +zipper, frozen: text/);
  assert.match(r.stdout, /gap [-\d.]+; TTS loss/);
  const summary = JSON.parse(readFileSync(join(dir, 'runs', 'zip', 'summary.json'), 'utf8'));
  assert.equal(summary.steps, 12);
  assert.ok(Number.isFinite(summary.best_dev_loss) && summary.best_step > 0);
  assert.ok(existsSync(join(dir, 'runs', 'zip', 'best', 'latest.json')));
  // The frozen tower: every text.* tensor equals the pretrained tower's, byte for byte.
  const ck = (run: string) => join(dir, 'runs', run, 'checkpoints', readdirSync(join(dir, 'runs', run, 'checkpoints')).filter((d) => d.startsWith('step-')).sort().pop()!, 'model.safetensors');
  const tower = readSafetensors(ck('text')).tensors;
  const zipped = readSafetensors(ck('zip')).tensors;
  let compared = 0;
  for (const [name, t] of tower) {
    const z = zipped.get(`text.${name}`)!;
    assert.ok(Buffer.from(z.data.buffer, z.data.byteOffset, z.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `text.${name} changed`);
    compared++;
  }
  assert.ok(compared > 10);
  const speech = readSafetensors(ck('speech')).tensors;
  assert.ok(!Buffer.from(zipped.get('speech.wte.weight')!.data.buffer).equals(Buffer.from(speech.get('wte.weight')!.data.buffer)), 'the unfrozen speech tower trained');
  // The metrics carry the conditioning gap and the gates.
  const dev = readFileSync(join(dir, 'runs', 'zip', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'dev');
  assert.equal(dev.length, 2);
  for (const k of ['dev_asr_loss', 'dev_tts_loss', 'gap_asr', 'gap_tts', 'gate_text_attn', 'gate_speech_ff']) assert.ok(Number.isFinite(dev[1][k]), `${k} in ${JSON.stringify(dev[1])}`);
});

test('zipper generate on a fine-tuned zipper: --audio prints a transcript line per file, --text writes units and a WAV', () => {
  const audio = readManifest(join(dir, 'corpus', 'manifests', 'dev-clean.jsonl')).slice(0, 2).map((u) => join('corpus', 'manifests', u.audio));
  const asr = runZipper(['generate', '--run', 'runs/zip', '--audio', ...audio], dir);
  assert.equal(asr.code, 0, asr.stderr);
  assert.equal(asr.stdout.trim().split('\n').length, 2);
  assert.ok(asr.stdout.startsWith(audio[0]!));
  const tts = runZipper(['generate', '--run', 'runs/zip', '--text', 'the jury said', '--beam', '2', '--out', 'tts'], dir);
  assert.equal(tts.code, 0, tts.stderr);
  assert.ok(existsSync(join(dir, 'tts', 'tts-0.wav')));
  const units = JSON.parse(readFileSync(join(dir, 'tts', 'tts-0.units.json'), 'utf8'));
  assert.equal(units.text, 'the jury said');
  assert.ok(units.units.every((u: number) => u >= 3), 'only unit ids (no specials) in the output');
});

test('zipper eval asr scores a split: corpus-level counts, per-utterance recognitions and alignments', () => {
  const r = runZipper(['eval', 'asr', '--run', 'runs/zip', '--corpus', 'corpus', '--splits', 'dev-clean,test-other', '--out', 'asr'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| dev-clean \| \d+ \| [\d.]+ \|/);
  const s = JSON.parse(readFileSync(join(dir, 'asr', 'dev-clean', 'summary.json'), 'utf8'));
  const refs = readManifest(join(dir, 'corpus', 'manifests', 'dev-clean.jsonl'));
  assert.equal(s.utterances, refs.length);
  // Every reference word is counted once; errors add up; the rate is errors over words.
  assert.equal(s.counts.refWords, refs.reduce((n, u) => n + u.text.split(' ').length, 0));
  const errors = s.per_utterance.reduce((n: number, u: { errors: number }) => n + u.errors, 0);
  assert.equal(errors, s.counts.substitutions + s.counts.deletions + s.counts.insertions);
  assert.ok(Math.abs(s.wer - errors / s.counts.refWords) < 1e-12);
  const recogs = readFileSync(join(dir, 'asr', 'dev-clean', 'recogs.txt'), 'utf8').trim().split('\n');
  assert.equal(recogs.length, 2 * refs.length);
  assert.match(readFileSync(join(dir, 'asr', 'dev-clean', 'errs.txt'), 'utf8'), /^REF: /m);
  assert.ok(existsSync(join(dir, 'asr', 'test-other', 'summary.json')));
});

test('zipper fuse --resume continues to the same weights as an uninterrupted run', () => {
  // A constant schedule: a 6-step run then has the first 6 learning rates of a 12-step one.
  const full = fuse('full', [], ['train.steps=12', 'train.schedule=constant']);
  assert.equal(full.code, 0, full.stderr);
  const half = fuse('half', [], ['train.steps=6', 'train.schedule=constant']);
  assert.equal(half.code, 0, half.stderr);
  const rest = fuse('half', ['--resume'], ['train.steps=12', 'train.schedule=constant']);
  assert.equal(rest.code, 0, rest.stderr);
  const w = (run: string) => readFileSync(join(dir, 'runs', run, 'checkpoints', 'step-0000012', 'model.safetensors'));
  assert.ok(w('half').equals(w('full')), 'resumed weights differ from the uninterrupted run');
});

test('the single-decoder baseline trains on the same data, with DMLM options', () => {
  const r = fuse('sd', ['--architecture', 'single-decoder'], ['single_decoder.unimodal_ratio=0.5', 'single_decoder.loss=modality', 'train.select_on=dev_asr_loss']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /model +single-decoder/);
  const s = JSON.parse(readFileSync(join(dir, 'runs', 'sd', 'summary.json'), 'utf8'));
  assert.equal(s.trainable_params, s.params);
  // The best checkpoint was chosen by the ASR dev loss: the lowest one logged.
  assert.equal(s.selected_on, 'dev_asr_loss');
  const dev = readFileSync(join(dir, 'runs', 'sd', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'dev');
  assert.equal(s.metrics.dev_asr_loss, Math.min(...dev.map((d) => d.dev_asr_loss)));
  const asr = runZipper(['generate', '--run', 'runs/sd', '--audio', join('corpus', 'manifests', readManifest(join(dir, 'corpus', 'manifests', 'dev-clean.jsonl'))[0]!.audio)], dir);
  assert.equal(asr.code, 0, asr.stderr);
});

test('inputs that do not fit together fail before any training, naming what is wrong', () => {
  const cases: [string[], string[], RegExp][] = [
    [['--text', 'runs/speech'], [], /--text runs\/speech: is a speech tower; --text needs a text tower/],
    [['--speech', 'runs/nope'], [], /--speech runs\/nope: no such run folder/],
    [['--fraction', '0'], [], /data\.fraction/],
    [['--fraction', '1.5'], [], /data\.fraction/],
    [['--fraction', '0.0001'], [], /aligned fraction 0\.0001 of \d+ utterances selects none/],
    [['--freeze', 'audio'], [], /freeze/],
  ];
  for (const [flags, sets, re] of cases) {
    const args = ['fuse', '--text', 'runs/text', '--speech', 'runs/speech', '--no-progress', '--name', 'bad', ...flags, ...[...FUSE_SETS, ...sets].flatMap((s) => ['--set', s])];
    const r = runZipper(args, dir);
    assert.equal(r.code, 1, `${flags.join(' ')} should fail`);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(join(dir, 'runs', 'bad', 'checkpoints')), `${flags.join(' ')}: training started`);
  }
  // A token folder made by another speech tokenizer than the speech tower's.
  cpSync(join(dir, 'corpus', 'tokens'), join(dir, 'other-tokens'), { recursive: true });
  const rec = JSON.parse(readFileSync(join(dir, 'other-tokens', 'tokens.json'), 'utf8'));
  rec.tokenizer.sha256 = '0'.repeat(64);
  writeFileSync(join(dir, 'other-tokens', 'tokens.json'), JSON.stringify(rec));
  const r = runZipper(['fuse', '--text', 'runs/text', '--speech', 'runs/speech', '--name', 'bad', '--set', 'data.tokens=other-tokens', ...FUSE_SETS.flatMap((s) => ['--set', s])], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /trained on units of another tokenizer/);
});
