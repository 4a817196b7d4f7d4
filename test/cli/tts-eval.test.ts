import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/cli/common.js';
import { sha256Hex } from '../../src/config/hash.js';
import { readManifest } from '../../src/data/manifest.js';
import { brownSentences } from '../../src/data/text.js';
import { judgeSpeech, planTtsEval } from '../../src/eval/tts.js';
import { wordErrorRate } from '../../src/eval/wer.js';
import { chooseEngine, FUSED_DECODE_ORT } from '../../src/engine/select.js';
import { loadFusedRun } from '../../src/train/fused.js';
import { readTokenSplit } from '../../src/tokenizers/speech/tokenize.js';
import { UNIT_OFFSET } from '../../src/tokenizers/speech/tokenizer.js';
import { runZipper, tinyPretrain } from './run-cli.js';
import type { TtsUtterance } from '../../src/eval/tts.js';

/**
 * The TTS judge and `zipper eval tts` end to end on the tiny built-in corpus: tiny towers, a few
 * fine-tuning steps for the model under test and for the judge (plumbing, not quality).
 */
const cfg = (name: string) => join(projectRoot(), 'configs', name);
let dir = '';

// 150 steps at 3e-3 (a few seconds): after a handful of steps the zipper says one unit over and
// over and the judge says "eeee" whatever it hears, and the offset checks below would prove nothing.
const SETS = ['data.corpus=corpus', 'data.dev_utterances=16', 'train.batch_size=4', 'train.steps=150', 'train.lr=3e-3', 'train.warmup_steps=2', 'train.eval_every=150', 'train.checkpoint_every=150', 'train.log_every=50', 'zip.layers=1', 'zip.gate_init=0.3'].flatMap((s) => ['--set', s]);
const evalTts = (out: string, extra: string[] = []) => runZipper(['eval', 'tts', '--run', 'runs/zip', '--judge', 'runs/judge', '--corpus', 'corpus', '--limit', '8', '--out', out, ...extra], dir);

type PerUtterance = TtsUtterance;
const summaryOf = (out: string) => JSON.parse(readFileSync(join(dir, out, 'test-clean', 'summary.json'), 'utf8'));
const unitsOf = (out: string) =>
  readFileSync(join(dir, out, 'test-clean', 'units.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; gold: number[]; synth: number[] });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zipper-tts-'));
  const steps = [
    ['data', 'synth', '--config', cfg('data-tiny.yaml'), '--set', 'root=corpus'],
    ['tokenize', '--corpus', 'corpus', '--config', cfg('tokenize-tiny.yaml')],
    ['pretrain', '--modality', 'speech', '--name', 'speech', '--no-progress', ...['data.source=corpus/tokens', 'data.seq_len=32', 'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 192}', 'train.batch_tokens=256', 'train.steps=10', 'train.eval_every=10', 'train.eval_batches=1'].flatMap((s) => ['--set', s])],
  ];
  for (const s of steps) {
    const r = runZipper(s, dir);
    assert.equal(r.code, 0, `${s.slice(0, 2).join(' ')}: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'brown.txt'), brownSentences().slice(0, 3000).join('\n') + '\n');
  const text = runZipper([...tinyPretrain('brown.txt', 10, ['model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 64}', 'data.dev_fraction=0.2']), '--name', 'text'], dir);
  assert.equal(text.code, 0, text.stderr);
  const zip = runZipper(['fuse', '--text', 'runs/text', '--speech', 'runs/speech', '--name', 'zip', '--no-progress', ...SETS], dir);
  assert.equal(zip.code, 0, zip.stderr);
});

test('zipper judge train: the ASR-only single decoder on all the aligned data, its run marked a judge', () => {
  const r = runZipper(['judge', 'train', '--text', 'runs/text', '--speech', 'runs/speech', '--no-progress', ...SETS], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /model +single-decoder/);
  assert.match(r.stdout, /TTS loss -, gap -/);
  const rec = JSON.parse(readFileSync(join(dir, 'runs', 'judge', 'judge.json'), 'utf8'));
  assert.equal(rec.role, 'judge');
  assert.equal(rec.architecture, 'single-decoder');
  assert.equal(rec.interrupted, false);
  // ASR only: no TTS example was trained on or measured.
  const dev = readFileSync(join(dir, 'runs', 'judge', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'dev');
  assert.ok(dev.length > 0 && dev.every((m) => Number.isFinite(m.dev_asr_loss) && m.dev_tts_loss === undefined));
  assert.match(readFileSync(join(dir, 'runs', 'judge', 'config.yaml'), 'utf8'), /tts: 0/);
  // A fraction below 1 is refused: a judge hears all the aligned data.
  const part = runZipper(['judge', 'train', '--text', 'runs/text', '--speech', 'runs/speech', '--name', 'part', '--set', 'data.fraction=0.5', '--dry-run'], dir);
  assert.equal(part.code, 1);
  assert.match(part.stderr, /data\.fraction 0\.5: a judge trains on all the aligned data/);
});

test('zipper eval tts: three WERs, per-utterance records that recompute them, unit lengths', () => {
  const r = evalTts('tts');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| system \| [\d.]+ \| [\d.-]+ \| [\d.]+ \|/);
  assert.match(r.stdout, /\| oracle \(judge on gold\) \| [\d.]+ \| - \| - \|/);
  const s = summaryOf('tts');
  assert.equal(s.utterances, 8);
  assert.equal(s.per_utterance.length, 8);
  for (const k of ['wer_gold', 'wer_target', 'wer_oracle', 'cer_gold']) assert.ok(Number.isFinite(s[k]), `${k}: ${s[k]}`);
  const per = s.per_utterance as PerUtterance[];
  // The corpus figures from the per-utterance records, independently.
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
  near(wordErrorRate(per.map((u) => ({ ref: u.ref, hyp: u.hyp }))).wer, s.wer_gold, 'wer_gold');
  near(wordErrorRate(per.map((u) => ({ ref: u.target, hyp: u.hyp }))).wer, s.wer_target, 'wer_target');
  near(wordErrorRate(per.map((u) => ({ ref: u.ref, hyp: u.target }))).wer, s.wer_oracle, 'wer_oracle');
  const sum = (f: (u: PerUtterance) => number) => per.reduce((n, u) => n + f(u), 0);
  near(sum((u) => u.errors_gold) / sum((u) => u.words_gold), s.wer_gold, 'errors_gold / words_gold');
  near(sum((u) => u.errors_target!) / sum((u) => u.words_target!), s.wer_target, 'errors_target / words_target');
  // recogs.txt holds the same three transcripts per utterance.
  const recogs = readFileSync(join(dir, 'tts', 'test-clean', 'recogs.txt'), 'utf8').trim().split('\n');
  assert.equal(recogs.length, 3 * 8);
  per.forEach((u, i) => assert.deepEqual(recogs.slice(3 * i, 3 * i + 3), [`${u.id}\tref=${u.ref}`, `${u.id}\ttarget=${u.target}`, `${u.id}\thyp=${u.hyp}`]));
  assert.match(readFileSync(join(dir, 'tts', 'test-clean', 'errs.txt'), 'utf8'), /vs target: \d+ sub.*\nREF: /);
  // Unit lengths: means over the utterances spoken, as units.jsonl has them.
  const units = unitsOf('tts');
  const spoken = units.filter((_, i) => per[i]!.spoken);
  assert.equal(s.units.utterances, spoken.length);
  near(s.units.synth_mean, spoken.reduce((n, u) => n + u.synth.length, 0) / spoken.length, 'synth_mean');
  near(s.units.gold_mean, spoken.reduce((n, u) => n + u.gold.length, 0) / spoken.length, 'gold_mean');
  assert.equal(s.too_long.text, 8 - spoken.length);
});

test('eval tts feeds the judge unit ids as eval asr does: gold units match the token folder, and the asr path gives the same transcripts', () => {
  const per = summaryOf('tts').per_utterance as PerUtterance[];
  const units = unitsOf('tts');
  // Gold units of a LibriTTS file equal (but for resampling) those the token folder holds for its
  // LibriSpeech twin: a unit offset added or lost would make them disagree almost everywhere.
  const tts = new Map(readManifest(join(dir, 'corpus', 'manifests', 'libritts-test-clean.jsonl')).map((u) => [u.id, u]));
  const twins = readManifest(join(dir, 'corpus', 'manifests', 'test-clean.jsonl'));
  const folder = new Map(readTokenSplit(join(dir, 'corpus', 'tokens'), 'test-clean').map((u) => [u.id, u.units]));
  let same = 0;
  let all = 0;
  for (const u of units) {
    const t = tts.get(u.id)!;
    const g = folder.get(twins.find((x) => x.speaker === t.speaker && x.text === t.text)!.id)!;
    for (let i = 0; i < Math.min(g.length, u.gold.length); i++) same += g[i] === u.gold[i] ? 1 : 0;
    all += g.length;
  }
  assert.ok(same / all > 0.9, `gold units agree with the token folder's on ${((100 * same) / all).toFixed(1)}% of positions`);
  // The same units through `eval asr` with the judge (a token folder written from units.jsonl, in
  // the same order): its hypotheses are the targets (gold units) and the hypotheses (synthesized).
  // The gold units one unit id lower must change what the judge says, and the synthesized units
  // must not all be one unit: else the equalities prove nothing.
  const root = join(dir, 'asrcheck');
  mkdirSync(join(root, 'manifests'), { recursive: true });
  mkdirSync(join(root, 'tokens'), { recursive: true });
  const splits: Record<string, { file: string; sha256: string }> = {};
  const sets = {
    gold: units.map((u, i) => ({ id: u.id, units: u.gold, ref: per[i]!.ref })),
    synth: units.flatMap((u, i) => (per[i]!.spoken ? [{ id: u.id, units: u.synth, ref: per[i]!.ref }] : [])),
    shifted: units.map((u, i) => ({ id: u.id, units: u.gold.map((x) => (x > UNIT_OFFSET ? x - 1 : x)), ref: per[i]!.ref })),
  };
  for (const [split, rows] of Object.entries(sets)) {
    writeFileSync(join(root, 'manifests', `${split}.jsonl`), rows.map((r) => JSON.stringify({ id: r.id, audio: 'none.wav', duration: 1, text: r.ref, speaker: 's', split }) + '\n').join(''));
    const text = rows.map((r) => JSON.stringify({ id: r.id, units: r.units }) + '\n').join('');
    writeFileSync(join(root, 'tokens', `${split}.jsonl`), text);
    splits[split] = { file: `${split}.jsonl`, sha256: sha256Hex(text) };
  }
  writeFileSync(join(root, 'tokens', 'tokens.json'), JSON.stringify({ splits }));
  const r = runZipper(['eval', 'asr', '--run', 'runs/judge', '--corpus', 'asrcheck', '--splits', 'gold,synth,shifted', '--out', 'asrcheck-out'], dir);
  assert.equal(r.code, 0, r.stderr);
  const hyps = (split: string) => new Map(JSON.parse(readFileSync(join(dir, 'asrcheck-out', split, 'summary.json'), 'utf8')).per_utterance.map((u: { id: string; hyp: string }) => [u.id, u.hyp]));
  const gold = hyps('gold');
  const synth = hyps('synth');
  for (const u of per) {
    assert.equal(gold.get(u.id), u.target, `${u.id}: target`);
    if (u.spoken) assert.equal(synth.get(u.id), u.hyp, `${u.id}: hypothesis`);
  }
  assert.ok(units.some((u) => new Set(u.synth).size > 3), 'the model under test says more than a unit or three');
  const shifted = hyps('shifted');
  const changed = per.filter((u) => u.target !== '' && shifted.get(u.id) !== u.target).length;
  assert.ok(changed >= per.filter((u) => u.target !== '').length / 2, `the judge hears its input: ${changed} of ${per.length} transcripts changed with the units shifted`);
});

test('a model that says exactly the gold units gets the targets as hypotheses: both reach the judge the same way', async () => {
  const named = (run: string) => ({ path: join(dir, 'runs', run), run: loadFusedRun(join(dir, 'runs', run)) });
  const logs: string[] = [];
  const o = { corpus: join(dir, 'corpus'), split: 'test-clean', limit: 8, beam: 1, batch: 16, normalizer: 'librispeech' as const, out: join(dir, 'echo'), log: (l: string) => logs.push(l) };
  const plan = await planTtsEval(named('zip'), named('judge'), o);
  const choice = await chooseEngine('auto', 'auto', FUSED_DECODE_ORT);
  // The judging stage alone, handed the gold units as what the model said.
  const r = await judgeSpeech(plan, choice, { synth: plan.utts.map((u) => u.gold), speaks: plan.utts.map(() => true) });
  assert.ok(logs.some((l) => /targets: reused /.test(l)), 'the targets come from the `eval tts` run above');
  assert.ok(r.per_utterance.some((u) => u.target !== ''));
  for (const u of r.per_utterance) assert.equal(u.hyp, u.target, u.id);
  assert.equal(r.wer_target, 0);
  assert.equal(r.wer_gold, r.wer_oracle);
});

test('the judge\'s targets are cached in its run folder and reused', () => {
  const cacheDir = join(dir, 'runs', 'judge', 'eval', 'tts-targets');
  const files = readdirSync(cacheDir);
  assert.equal(files.length, 1);
  const file = join(cacheDir, files[0]!);
  const before = { text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs };
  const r = evalTts('tts-again');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /targets: reused /);
  assert.deepEqual({ text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs }, before);
  assert.deepEqual(readdirSync(cacheDir), files);
  const [a, b] = [summaryOf('tts'), summaryOf('tts-again')];
  assert.equal(b.targets.reused, true);
  assert.deepEqual(b.per_utterance, a.per_utterance);
  // Another choice of utterances is another cache entry.
  const more = evalTts('tts-more', ['--limit', '4']);
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stderr, /targets: wrote /);
  assert.equal(readdirSync(cacheDir).length, 2);
});

test('eval tts: inputs that do not fit together fail before decoding, naming the run or file', () => {
  // A judge whose speech tokenizer differs (two codebook rows swapped: same size, other units).
  cpSync(join(dir, 'runs', 'judge'), join(dir, 'runs', 'judge-other'), { recursive: true });
  for (const sub of ['best', 'checkpoints']) {
    const parent = join(dir, 'runs', 'judge-other', sub);
    for (const ck of readdirSync(parent).filter((d) => d.startsWith('step-'))) {
      const f = join(parent, ck, 'speech-tokenizer.json');
      const j = JSON.parse(readFileSync(f, 'utf8'));
      const bytes = Buffer.from(j.codebook.data, 'base64');
      const row = j.codebook.dim * 4;
      const first = Buffer.from(bytes.subarray(0, row));
      bytes.copy(bytes, 0, row, 2 * row);
      first.copy(bytes, row);
      j.codebook = { ...j.codebook, data: bytes.toString('base64'), sha256: sha256Hex(bytes) };
      writeFileSync(f, JSON.stringify(j));
    }
  }
  const cases: [string[], RegExp][] = [
    [['--judge', 'runs/judge-other'], /--run runs\/zip and --judge runs\/judge-other use different tokenizers: speech-tokenizer\.json in runs\/zip\/best\/step-\d+ and runs\/judge-other\/best\/step-\d+ differ/],
    [['--judge', 'runs/text'], /--judge runs\/text: .*not a fine-tuned/],
    [['--judge', 'runs/zip'], /--judge runs\/zip was not made by `zipper judge train`.*--any-judge/],
    [['--run', 'runs/judge'], /--run runs\/judge is a judge/],
    [['--split', 'dev-clean'], /--split dev-clean: LibriTTS-layout manifest corpus\/manifests\/libritts-dev-clean\.jsonl: file not found/],
  ];
  for (const [flags, re] of cases) {
    const args = ['eval', 'tts', '--run', 'runs/zip', '--judge', 'runs/judge', '--corpus', 'corpus', '--out', 'bad', ...flags];
    const r = runZipper(args, dir);
    assert.equal(r.code, 1, `${flags.join(' ')} should fail`);
    assert.match(r.stderr, re);
    assert.ok(!/^engine /m.test(r.stderr), `${flags.join(' ')}: an engine started`);
    assert.ok(!existsSync(join(dir, 'bad')), `${flags.join(' ')}: results written`);
  }
});
