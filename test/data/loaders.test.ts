import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readAudio, writeFlac, writeWav } from '../../src/data/audio.js';
import { loadLibriSpeech } from '../../src/data/librispeech.js';
import { loadLibriTTS } from '../../src/data/libritts.js';
import { BadInputError, type BadInputKind, readManifest, resolveAudio } from '../../src/data/manifest.js';
import { synthCorpus } from '../../src/data/synth/corpus.js';
import { startDataCommand, tinyConfig } from './synth-fixture.js';

// One small corpus (test-clean only, with its LibriTTS copy), copied and damaged once per case.
const dir = mkdtempSync(join(tmpdir(), 'zipper-loaders-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const root = join(dir, 'corpus');
const only = ['train-aligned', 'train-unlabelled', 'dev-clean', 'dev-other', 'test-other'].map((s) => `hours.${s}=0`);

before(async () => {
  await synthCorpus(tinyConfig(root, [...only, 'hours.test-clean=0.005', 'chapter_size=3']), { progress: false });
});

let cases = 0;
/** A fresh copy of a split, for one case to damage. */
function copyOf(layout: 'LibriSpeech' | 'LibriTTS'): { split: string; chapter: string; spk: string; ch: string } {
  const split = join(dir, `case${cases++}`, 'test-clean');
  cpSync(join(root, layout, 'test-clean'), split, { recursive: true });
  const spk = readdirSync(split).sort()[0]!;
  const ch = readdirSync(join(split, spk)).sort()[0]!;
  return { split, chapter: join(split, spk, ch), spk, ch };
}

/** Under `stop` the load throws naming `where`; under `skip` it keeps `kept` utterances and counts one `kind`. */
function expectBad(load: typeof loadLibriSpeech, split: string, kind: BadInputKind, where: RegExp, reason: RegExp, kept: number): void {
  assert.throws(
    () => load(split),
    (err: unknown) => err instanceof BadInputError && err.kind === kind && where.test(err.where) && reason.test(err.message),
  );
  const r = load(split, { policy: 'skip' });
  assert.equal(r.skipped[kind], 1, kind);
  assert.equal(Object.values(r.skipped).reduce((a, b) => a + b, 0), 1);
  assert.equal(r.problems.length, 1);
  assert.equal(r.utterances.length, kept);
}

describe('LibriSpeech loader: bad input', () => {
  let total = 0;
  before(() => {
    total = loadLibriSpeech(join(root, 'LibriSpeech', 'test-clean')).utterances.length;
  });

  test('a truncated FLAC', () => {
    const { split, chapter } = copyOf('LibriSpeech');
    const flac = join(chapter, readdirSync(chapter).find((f) => f.endsWith('.flac'))!);
    truncateSync(flac, Math.floor(readFileSync(flac).length / 2));
    expectBad(loadLibriSpeech, split, 'bad_audio', new RegExp(`${flac}$`), /truncated FLAC/, total - 1);
    // Headers alone do not see it: --no-verify is the fast, trusting mode.
    assert.equal(loadLibriSpeech(split, { verify: false }).utterances.length, total);
  });

  test('a corrupt FLAC', () => {
    const { split, chapter } = copyOf('LibriSpeech');
    const flac = join(chapter, readdirSync(chapter).find((f) => f.endsWith('.flac'))!);
    const bytes = readFileSync(flac);
    for (let i = 100; i < bytes.length - 100; i += 7) bytes[i] ^= 0xa5;
    writeFileSync(flac, bytes);
    expectBad(loadLibriSpeech, split, 'bad_audio', new RegExp(`${flac}$`), /(corrupt|truncated) FLAC/, total - 1);
  });

  test('a wrong sample rate', () => {
    const { split, chapter } = copyOf('LibriSpeech');
    const flac = join(chapter, readdirSync(chapter).find((f) => f.endsWith('.flac'))!);
    writeFlac(flac, new Float32Array(8000).fill(0.1), 8000);
    expectBad(loadLibriSpeech, split, 'wrong_sample_rate', new RegExp(`${flac}$`), /wrong sample rate 8000 Hz \(expected 16000\)/, total - 1);
  });

  test('a transcript line without an id', () => {
    const { split, chapter, spk, ch } = copyOf('LibriSpeech');
    const trans = join(chapter, `${spk}-${ch}.trans.txt`);
    const lines = readFileSync(trans, 'utf8').split('\n').length; // the new line's number
    appendFileSync(trans, 'AND THEN THERE WERE NONE\n');
    expectBad(loadLibriSpeech, split, 'line_without_id', new RegExp(`${trans}:${lines}$`), /transcript line has no utterance id/, total);
  });

  test('an id without audio', () => {
    const { split, chapter, spk, ch } = copyOf('LibriSpeech');
    const trans = join(chapter, `${spk}-${ch}.trans.txt`);
    const lines = readFileSync(trans, 'utf8').split('\n').length;
    appendFileSync(trans, `${spk}-${ch}-0099 A LINE WITH NOTHING TO HEAR\n`);
    expectBad(loadLibriSpeech, split, 'id_without_audio', new RegExp(`${trans}:${lines}$`), new RegExp(`${spk}-${ch}-0099 has no audio file`), total);
  });

  test('audio without a transcript line', () => {
    const { split, chapter, spk, ch } = copyOf('LibriSpeech');
    const flac = join(chapter, `${spk}-${ch}-0098.flac`);
    copyFileSync(join(chapter, `${spk}-${ch}-0000.flac`), flac);
    expectBad(loadLibriSpeech, split, 'audio_without_transcript', new RegExp(`${flac}$`), /no transcript line for/, total);
  });

  test('an empty split, or one where everything was skipped', () => {
    const empty = join(dir, 'empty', 'dev-clean');
    mkdirSync(empty, { recursive: true });
    assert.throws(() => loadLibriSpeech(empty), /dev-clean: no utterances \(empty split\)/);
    assert.throws(() => loadLibriSpeech(join(dir, 'nowhere')), /nowhere: split folder not found/);
    const { split, chapter, spk, ch } = copyOf('LibriSpeech');
    for (const d of readdirSync(split)) if (d !== spk) rmSync(join(split, d), { recursive: true });
    for (const d of readdirSync(join(split, spk))) if (d !== ch) rmSync(join(split, spk, d), { recursive: true });
    writeFileSync(join(chapter, `${spk}-${ch}.trans.txt`), '');
    assert.throws(() => loadLibriSpeech(split, { policy: 'skip' }), /no utterances \(empty split\) \(all \d+ skipped; first: .*no transcript line/);
  });

  test('a LibriSpeech root instead of a split says which folder to give', () => {
    assert.throws(() => loadLibriSpeech(join(root, 'LibriSpeech')), /not speaker folders: point at one split, e\.g\. .*test-clean/);
  });
});

describe('LibriTTS loader: bad input', () => {
  let total = 0;
  before(() => {
    total = loadLibriTTS(join(root, 'LibriTTS', 'test-clean')).utterances.length;
  });

  const wavOf = (chapter: string) => join(chapter, readdirSync(chapter).find((f) => f.endsWith('.wav'))!);

  test('a truncated WAV', () => {
    const { split, chapter } = copyOf('LibriTTS');
    const wav = wavOf(chapter);
    truncateSync(wav, 2000);
    expectBad(loadLibriTTS, split, 'bad_audio', new RegExp(`${wav}$`), /truncated WAV/, total - 1);
  });

  test('a wrong sample rate (16 kHz where LibriTTS is 24 kHz)', () => {
    const { split, chapter } = copyOf('LibriTTS');
    const wav = wavOf(chapter);
    writeWav(wav, new Float32Array(16000), 16000);
    expectBad(loadLibriTTS, split, 'wrong_sample_rate', new RegExp(`${wav}$`), /wrong sample rate 16000 Hz \(expected 24000\)/, total - 1);
  });

  test('audio without its .normalized.txt, and a transcript without its audio', () => {
    const a = copyOf('LibriTTS');
    const wav = wavOf(a.chapter);
    rmSync(wav.replace(/\.wav$/, '.normalized.txt'));
    expectBad(loadLibriTTS, a.split, 'audio_without_transcript', new RegExp(`${wav}$`), /no transcript/, total - 1);
    const b = copyOf('LibriTTS');
    const orphan = wavOf(b.chapter);
    rmSync(orphan);
    expectBad(loadLibriTTS, b.split, 'id_without_audio', new RegExp(`${orphan.replace(/\.wav$/, '.normalized.txt')}$`), /has no audio file/, total - 1);
  });

  test('an empty transcript', () => {
    const { split, chapter } = copyOf('LibriTTS');
    const txt = wavOf(chapter).replace(/\.wav$/, '.normalized.txt');
    writeFileSync(txt, ' . \n');
    expectBad(loadLibriTTS, split, 'empty_transcript', new RegExp(`${txt}:1$`), /has no transcript text/, total - 1);
  });

  test('texts come out in LibriSpeech style, audio resampled by readers to 16 kHz', () => {
    const r = loadLibriTTS(join(root, 'LibriTTS', 'test-clean'));
    for (const u of r.utterances) {
      assert.match(u.text, /^[A-Z']+( [A-Z']+)*$/);
      assert.equal(readAudio(u.audio).sampleRate, 24000);
    }
  });
});

describe('zipper data manifest', () => {
  test('writes a manifest (absolute or relative paths) and reports what it skipped', async () => {
    const { split, chapter, spk, ch } = copyOf('LibriSpeech');
    appendFileSync(join(chapter, `${spk}-${ch}.trans.txt`), 'NO ID HERE\n');
    const out = join(dir, 'out', 'test-clean.jsonl');
    const run = async (extra: string[]) => {
      const child = startDataCommand(['manifest', '--librispeech', split, '--out', out, ...extra], dir);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { code, stdout, stderr };
    };
    const stopped = await run([]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, new RegExp(`zipper: ${chapter}/${spk}-${ch}\\.trans\\.txt:\\d+: transcript line has no utterance id`));
    const skipped = await run(['--bad-input', 'skip']);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stdout, /skipped +line_without_id 1/);
    const record = JSON.parse(readFileSync(`${out}.record.json`, 'utf8'));
    assert.equal(record.skipped.line_without_id, 1);
    assert.equal(record.policy, 'skip');
    assert.equal(record.utterances, readManifest(out).length);
    assert.ok(record.problems.some((p: string) => /no utterance id/.test(p)), JSON.stringify(record.problems));
    const m = readManifest(out);
    assert.ok(m.length > 0 && m.every((u) => u.audio.startsWith(split)));
    assert.equal((await run(['--bad-input', 'skip', '--relative'])).code, 0);
    assert.deepEqual(readManifest(out).map((u) => resolveAudio(out, u)), m.map((u) => u.audio));
  });
});
