import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SYNTH_SPLITS, TRAIN_SPLITS } from '../../src/config/data-schema.js';
import { readAudio } from '../../src/data/audio.js';
import { INCOMPLETE_MARKER, loadLibriSpeech } from '../../src/data/librispeech.js';
import { loadLibriTTS } from '../../src/data/libritts.js';
import { readManifest, resolveAudio, type Utterance } from '../../src/data/manifest.js';
import { readCorpusInfo, synthCorpus, type SynthResult } from '../../src/data/synth/corpus.js';
import { startDataCommand, tinyConfig, treeHashes } from './synth-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'zipper-synth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const rootA = join(dir, 'a');
let built: SynthResult;
const manifests = new Map<string, Utterance[]>();

before(async () => {
  built = await synthCorpus(tinyConfig(rootA, ['workers=2']), { progress: false });
  for (const split of SYNTH_SPLITS) manifests.set(split, readManifest(join(rootA, 'manifests', `${split}.jsonl`)));
});

describe('zipper data synth', () => {
  test('writes every split in the LibriSpeech layout, with a manifest and corpus.json', () => {
    assert.equal(built.status, 'built');
    assert.equal(existsSync(`${rootA}.partial`), false);
    assert.equal(existsSync(join(rootA, INCOMPLETE_MARKER)), false);
    const info = readCorpusInfo(rootA)!;
    for (const split of SYNTH_SPLITS) {
      const utts = manifests.get(split)!;
      assert.equal(utts.length, info.splits[split]!.utterances, split);
      const hours = utts.reduce((s, u) => s + u.duration, 0) / 3600;
      const target = info.config.hours[split];
      assert.ok(hours > 0.5 * target && hours < 1.6 * target, `${split}: ${hours} h for ${target} h`);
      for (const u of utts) {
        assert.match(u.id, /^\d+-\d+-\d{4}$/);
        const [spk, ch] = u.id.split('-');
        assert.equal(u.speaker, spk);
        assert.equal(resolveAudio(join(rootA, 'manifests', `${split}.jsonl`), u), join(rootA, 'LibriSpeech', split, spk!, ch!, `${u.id}.flac`));
        assert.equal(u.text === '', split === 'train-unlabelled', u.id);
        if (u.text) assert.match(u.text, /^[A-Z']+( [A-Z']+)*$/);
      }
    }
    // The unlabelled pool's transcripts are on disk all the same.
    const u = manifests.get('train-unlabelled')![0]!;
    const [spk, ch] = u.id.split('-');
    assert.match(readFileSync(join(rootA, 'LibriSpeech', 'train-unlabelled', spk!, ch!, `${spk}-${ch}.trans.txt`), 'utf8'), new RegExp(`^${u.id} [A-Z]`));
    for (const f of ['SPEAKERS.TXT', 'CHAPTERS.TXT']) assert.ok(existsSync(join(rootA, 'LibriSpeech', f)));
  });

  test('dev/test speakers are unseen in training, and no sentence is in two splits', () => {
    const speakers = (splits: readonly string[]) => new Set(splits.flatMap((s) => manifests.get(s)!.map((u) => u.speaker)));
    const train = speakers(TRAIN_SPLITS);
    const evals = speakers(SYNTH_SPLITS.filter((s) => !TRAIN_SPLITS.includes(s)));
    assert.deepEqual([...train].filter((s) => evals.has(s)), []);
    const info = readCorpusInfo(rootA)!;
    for (const s of info.speakers) assert.equal(s.role === 'train', train.has(s.id), s.id);
    const texts = new Map<string, string>();
    for (const split of SYNTH_SPLITS) {
      const file = join(rootA, 'manifests', `${split}.jsonl`);
      for (const u of manifests.get(split)!) {
        const text = split === 'train-unlabelled' ? transcriptOf(file, u) : u.text;
        assert.equal(texts.get(text), undefined, `"${text}" in ${split} and ${texts.get(text)}`);
        texts.set(text, split);
      }
    }
  });

  test('manifest durations are the audio lengths', () => {
    for (const split of ['train-aligned', 'test-other']) {
      for (const u of manifests.get(split)!.slice(0, 5)) {
        const a = readAudio(resolveAudio(join(rootA, 'manifests', `${split}.jsonl`), u));
        assert.equal(a.sampleRate, 16000);
        assert.equal(a.samples.length / 16000, u.duration);
      }
    }
  });

  test('the LibriSpeech loader reads every split back as in the manifests', () => {
    for (const split of SYNTH_SPLITS) {
      const r = loadLibriSpeech(join(rootA, 'LibriSpeech', split));
      const m = manifests.get(split)!;
      assert.deepEqual(r.utterances.map((u) => u.id), m.map((u) => u.id), split);
      assert.deepEqual(r.utterances.map((u) => u.duration), m.map((u) => u.duration), split);
      assert.deepEqual(r.utterances.map((u) => u.speaker), m.map((u) => u.speaker), split);
      if (split !== 'train-unlabelled') assert.deepEqual(r.utterances.map((u) => u.text), m.map((u) => u.text), split);
      assert.ok(r.utterances.every((u) => u.split === split));
      assert.equal(Object.values(r.skipped).reduce((a, b) => a + b, 0), 0);
    }
  });

  test('the LibriTTS copy of test-clean reads back at 24 kHz with the same texts and durations', () => {
    const tts = loadLibriTTS(join(rootA, 'LibriTTS', 'test-clean')).utterances;
    const ls = manifests.get('test-clean')!;
    assert.equal(tts.length, ls.length);
    assert.deepEqual(readManifest(join(rootA, 'manifests', 'libritts-test-clean.jsonl')).map((u) => u.id), tts.map((u) => u.id));
    tts.forEach((t, i) => {
      assert.match(t.id, /^\d+_\d+_\d{6}_\d{6}$/);
      assert.equal(t.text, ls[i]!.text);
      assert.equal(t.speaker, ls[i]!.speaker);
      assert.ok(Math.abs(t.duration - ls[i]!.duration) < 1e-4, `${t.id}: ${t.duration} vs ${ls[i]!.duration}`);
    });
    assert.equal(readAudio(tts[0]!.audio).sampleRate, 24000);
    const chapter = join(rootA, 'LibriTTS', 'test-clean', tts[0]!.speaker, tts[0]!.id.split('_')[1]!);
    assert.ok(readdirSync(chapter).some((f) => f.endsWith('.trans.tsv')));
    assert.ok(existsSync(join(chapter, `${tts[0]!.id}.original.txt`)));
  });

  test('is deterministic: same seed, same files, whatever the number of workers', async () => {
    const rootB = join(dir, 'b');
    const b = await synthCorpus(tinyConfig(rootB, ['workers=1']), { progress: false });
    assert.equal(b.info.config_hash, built.info.config_hash);
    assert.deepEqual(b.info.splits, built.info.splits);
    const hashesA = treeHashes(rootA, ['corpus.json']);
    assert.ok(hashesA.size > 100);
    assert.deepEqual(treeHashes(rootB, ['corpus.json']), hashesA);
  });

  test('a re-run with the same config does nothing; another config is refused', async () => {
    const again = await synthCorpus(tinyConfig(rootA, ['workers=1']), { progress: false });
    assert.equal(again.status, 'complete');
    await assert.rejects(synthCorpus(tinyConfig(rootA, ['seed=7']), { progress: false }), /built from another config/);
  });

  test('an interrupted build is never taken as complete, and the next run rebuilds it', async () => {
    const root = join(dir, 'killed');
    const partial = `${root}.partial`;
    const child = startDataCommand(['synth', '-c', 'configs/data-tiny.yaml', '--set', `root=${root}`, '--no-progress'], dir);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Kill it as soon as it has written its first audio file.
    const flacs = () => (existsSync(join(partial, 'LibriSpeech')) ? readdirSync(join(partial, 'LibriSpeech'), { recursive: true }).filter((f) => String(f).endsWith('.flac')).length : 0);
    const deadline = Date.now() + 30_000;
    while (flacs() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(flacs() > 0, 'no audio written within 30 s');
    child.kill('SIGKILL');
    await exited;
    assert.equal(existsSync(root), false);
    assert.ok(existsSync(join(partial, INCOMPLETE_MARKER)));
    assert.equal(readCorpusInfo(partial), undefined);
    const someSplit = readdirSync(join(partial, 'LibriSpeech'))[0]!;
    assert.throws(() => loadLibriSpeech(join(partial, 'LibriSpeech', someSplit)), /inside an incomplete corpus/);

    const r = await synthCorpus(tinyConfig(root), { progress: false });
    assert.equal(r.status, 'built');
    assert.equal(existsSync(partial), false);
    assert.deepEqual(treeHashes(root, ['corpus.json']), treeHashes(rootA, ['corpus.json']));
  });
});

function transcriptOf(manifestFile: string, u: Utterance): string {
  const flac = resolveAudio(manifestFile, u);
  const trans = join(flac, '..', `${u.id.split('-').slice(0, 2).join('-')}.trans.txt`);
  const line = readFileSync(trans, 'utf8').split('\n').find((l) => l.startsWith(`${u.id} `))!;
  return line.slice(u.id.length + 1);
}
