import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { pino } from 'pino';
import { addUnitsToWav } from '../../src/cli/units-to-wav.js';
import { addTokenize } from '../../src/cli/tokenize.js';
import { TokenizeConfig } from '../../src/config/speech-schema.js';
import { readAudio, writeWav } from '../../src/data/audio.js';
import { kmeans } from '../../src/tokenizers/speech/kmeans.js';
import { SpeechPool } from '../../src/tokenizers/speech/pool.js';
import { SpeechTokenizer } from '../../src/tokenizers/speech/tokenizer.js';
import { readTokenSplit, tokenizeCorpus, type TokenizeOptions } from '../../src/tokenizers/speech/tokenize.js';
import { findProjectRoot } from '../../src/run/env.js';
import { Rng } from '../../src/util/rng.js';
import { RATE, speechLike } from './speech-synth.js';

const CFG = TokenizeConfig.parse({
  tokenizer: { kmeans: { codebook_size: 16, train_vectors: 1500, init_vectors: 800, iterations: 4 } },
  workers: 2,
});

interface Corpus {
  root: string;
  manifest: (split: string) => string;
}

/** A tiny corpus in the manifest layout: 3 speakers (pitches), 2-second utterances. */
function makeCorpus(splits: Record<string, number> = { 'train-unlabelled': 12, 'dev-clean': 4, 'test-clean': 3 }): Corpus {
  const root = fs.mkdtempSync(path.join(tmpdir(), 'zipper-speech-'));
  fs.mkdirSync(path.join(root, 'manifests'));
  fs.mkdirSync(path.join(root, 'audio'));
  let seed = 0;
  for (const [split, n] of Object.entries(splits)) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${split}-${i}`;
      const speaker = String(i % 3);
      writeWav(path.join(root, 'audio', `${id}.wav`), speechLike(2, seed++, 100 + 40 * (i % 3)), RATE);
      lines.push(JSON.stringify({ id, audio: `../audio/${id}.wav`, duration: 2, text: '', speaker, split }));
    }
    fs.writeFileSync(path.join(root, 'manifests', `${split}.jsonl`), lines.join('\n') + '\n');
  }
  return { root, manifest: (split) => path.join(root, 'manifests', `${split}.jsonl`) };
}

/** A logger whose lines are kept for assertions. */
function capture(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s).msg) }), lines };
}

const run = (c: Corpus, out: string, over: Partial<TokenizeOptions> = {}) => {
  const { log, lines } = capture();
  return tokenizeCorpus({ corpus: c.root, out, cfg: CFG, progress: false, log, ...over }).then((s) => ({ ...s, lines }));
};

const mtimes = (dir: string) => Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f)).mtimeMs]));

describe('zipper tokenize', () => {
  let c: Corpus;
  before(() => (c = makeCorpus()));
  after(() => fs.rmSync(c.root, { recursive: true, force: true }));

  it('writes token files for every split, then reuses them while the inputs are unchanged', async () => {
    const out = path.join(c.root, 'tokens');
    const first = await run(c, out);
    assert.equal(first.reused, false);
    assert.equal(first.tokenizer, 'trained');
    assert.deepEqual(fs.readdirSync(out).sort(), ['dev-clean.jsonl', 'speech-tokenizer.json', 'test-clean.jsonl', 'tokens.json', 'train-unlabelled.jsonl']);
    const dev = readTokenSplit(out, 'dev-clean');
    assert.deepEqual(dev.map((u) => u.id), ['dev-clean-0', 'dev-clean-1', 'dev-clean-2', 'dev-clean-3']);
    // 2 s at 25 units a second, ids after the three specials.
    assert.ok(dev.every((u) => u.units.length === 50 && u.units.every((id) => id >= 3 && id < 19)));
    // The file's ids are what the saved tokenizer gives on its own.
    const tk = SpeechTokenizer.fromJSON(fs.readFileSync(path.join(out, 'speech-tokenizer.json'), 'utf8'));
    const a = readAudio(path.join(c.root, 'audio', 'dev-clean-0.wav'));
    assert.deepEqual(tk.encodeAudio(a.samples, a.sampleRate), dev[0]!.units);
    const rec = first.record;
    assert.equal(rec.splits['train-unlabelled']!.units, 12 * 50);
    assert.equal(rec.stats.speakers, 3);
    assert.ok(rec.stats.pool_unigram_entropy_bits > 2 && rec.stats.pool_unigram_entropy_bits <= 4);

    const before = mtimes(out);
    const second = await run(c, out);
    assert.equal(second.reused, true);
    assert.match(second.lines.join('\n'), /reusing the tokens in .*inputs unchanged/);
    assert.deepEqual(mtimes(out), before, 'a reused folder is not rewritten');
  });

  it('redoes the splits, keeping the codebook, when a manifest other than the pool changes', async () => {
    const out = path.join(c.root, 'tokens-change');
    await run(c, out);
    const tokBefore = fs.readFileSync(path.join(out, 'speech-tokenizer.json'), 'utf8');
    const m = c.manifest('test-clean');
    const saved = fs.readFileSync(m, 'utf8');
    fs.writeFileSync(m, saved.split('\n').slice(0, 2).join('\n') + '\n');
    try {
      const again = await run(c, out);
      assert.equal(again.reused, false);
      assert.equal(again.tokenizer, 'reused');
      assert.equal(again.record.splits['test-clean']!.utterances, 2);
      assert.equal(fs.readFileSync(path.join(out, 'speech-tokenizer.json'), 'utf8'), tokBefore);
    } finally {
      fs.writeFileSync(m, saved);
    }
  });

  it('never takes a half-written folder as complete', async () => {
    const out = path.join(c.root, 'tokens-half');
    await run(c, out);
    // A crash before tokens.json: the folder is redone.
    fs.rmSync(path.join(out, 'tokens.json'));
    assert.throws(() => readTokenSplit(out, 'dev-clean'), /token folder .* is incomplete \(no tokens\.json\)/);
    assert.equal((await run(c, out)).reused, false);
    // A token file cut short behind a complete record: redone too.
    const f = path.join(out, 'dev-clean.jsonl');
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').slice(0, 50));
    assert.throws(() => readTokenSplit(out, 'dev-clean'), /does not match .*tokens\.json \(changed or half-written\)/);
    assert.equal((await run(c, out)).reused, false);
    assert.equal(readTokenSplit(out, 'dev-clean').length, 4);
  });

  it('applies the same codebook through --tokenizer', async () => {
    const out = path.join(c.root, 'tokens-loaded');
    const tokFile = path.join(c.root, 'tokens', 'speech-tokenizer.json');
    const s = await run(c, out, { tokenizerFile: tokFile });
    assert.equal(s.tokenizer, 'loaded');
    assert.deepEqual(readTokenSplit(out, 'dev-clean'), readTokenSplit(path.join(c.root, 'tokens'), 'dev-clean'));
    const bad = path.join(c.root, 'bad-tokenizer.json');
    fs.writeFileSync(bad, '{"format": "zipper-speech-tokenizer", "version": 1, "config": ');
    await assert.rejects(run(c, path.join(c.root, 'tokens-bad'), { tokenizerFile: bad }), new RegExp(`speech tokenizer ${bad}: not valid JSON`));
  });

  it('learns on the workers exactly what the reference scan learns', async () => {
    const rng = new Rng(4);
    const x = { data: Float32Array.from({ length: 3000 * 20 }, () => rng.normal()), n: 3000, dim: 20 };
    const opts = { k: 24, iterations: 3, initVectors: 1000, seed: 2 };
    const pool = SpeechPool.start(2);
    try {
      const viaWorkers = await kmeans(x, { ...opts, search: pool.search() });
      const reference = await kmeans(x, opts);
      assert.deepEqual(viaWorkers.centroids, reference.centroids);
    } finally {
      pool.close();
    }
  });
});

describe('zipper tokenize: bad input', () => {
  it('names an empty split', async () => {
    const c = makeCorpus({ 'train-unlabelled': 6 });
    fs.writeFileSync(c.manifest('dev-clean'), '');
    await assert.rejects(run(c, path.join(c.root, 'tokens')), new RegExp(`${c.manifest('dev-clean')}.*empty split`));
    fs.rmSync(c.root, { recursive: true, force: true });
  });

  it('stops on, skips and counts, or resamples a file at another sample rate', async () => {
    const c = makeCorpus({ 'train-unlabelled': 6, 'dev-clean': 3 });
    const odd = path.join(c.root, 'audio', 'dev-clean-1.wav');
    writeWav(odd, speechLike(2, 1).filter((_, i) => i % 2 === 0), 8000);
    const strict = { ...CFG, other_sample_rate: 'error' as const };
    await assert.rejects(run(c, path.join(c.root, 't1'), { cfg: strict }), new RegExp(`${odd}: sample rate 8000 Hz, but the speech tokenizer expects 16000 Hz`));
    assert.ok(!fs.existsSync(path.join(c.root, 't1', 'tokens.json')));
    const skipped = await run(c, path.join(c.root, 't2'), { cfg: { ...strict, on_bad_audio: 'skip' } });
    assert.equal(skipped.record.splits['dev-clean']!.skipped, 1);
    assert.equal(skipped.record.splits['dev-clean']!.utterances, 2);
    assert.match(skipped.record.splits['dev-clean']!.skipped_files[0]!, /dev-clean-1\.wav: sample rate 8000 Hz/);
    const resampled = await run(c, path.join(c.root, 't3'));
    assert.equal(resampled.record.splits['dev-clean']!.resampled, 1);
    assert.equal(readTokenSplit(path.join(c.root, 't3'), 'dev-clean')[1]!.units.length, 50);
    // A corrupt file under "stop": the message names it.
    fs.writeFileSync(odd, 'RIFF....WAVEjunk');
    await assert.rejects(run(c, path.join(c.root, 't4')), new RegExp(`${odd}`));
    fs.rmSync(c.root, { recursive: true, force: true });
  });
});

describe('command line', () => {
  /** Runs one of our commands in-process; returns what it printed. */
  async function cli(add: (p: Command) => void, args: string[]): Promise<string> {
    const program = new Command('zipper').exitOverride();
    add(program);
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'zipper', ...args]);
    } finally {
      process.stdout.write = write;
    }
    return out;
  }

  it('tokenize says when it reuses, units-to-wav writes audio', async () => {
    const c = makeCorpus({ 'train-unlabelled': 6, 'dev-clean': 2 });
    const out = path.join(c.root, 'tok');
    const args = ['tokenize', '--corpus', c.root, '--out', out, '-c', path.join(findProjectRoot()!, 'configs', 'tokenize-tiny.yaml'), '--set', 'tokenizer.kmeans.codebook_size=16', '--set', 'tokenizer.kmeans.train_vectors=300', '--set', 'tokenizer.kmeans.init_vectors=300', '--no-progress'];
    const first = await cli(addTokenize, args);
    assert.match(first, /tokenizer {4}trained, 16 units \(vocabulary 19\), 25 units\/s/);
    assert.match(await cli(addTokenize, args), /\(reused: inputs unchanged\)/);

    const wav = path.join(c.root, 'x.wav');
    const tok = path.join(out, 'speech-tokenizer.json');
    assert.match(await cli(addUnitsToWav, ['units-to-wav', '--tokens', '1 3 4,5 18 2', '--tokenizer', tok, '--out', wav]), /x\.wav: 6 tokens, 0\.17 s/);
    assert.equal(readAudio(wav).samples.length, 15 * 160 + 400);
    await cli(addUnitsToWav, ['units-to-wav', '--tokens-file', path.join(out, 'dev-clean.jsonl'), '--id', 'dev-clean-1', '--tokenizer', tok, '--out', wav]);
    assert.equal(readAudio(wav).samples.length, 199 * 160 + 400);
    await assert.rejects(cli(addUnitsToWav, ['units-to-wav', '--tokens', '3 19', '--tokenizer', tok, '--out', wav]), /speech token 19 is not a unit id \(3\.\.18\)/);
    await assert.rejects(cli(addUnitsToWav, ['units-to-wav', '--tokens', '3', '--tokenizer', path.join(c.root, 'none.json'), '--out', wav]), /none\.json/);
    fs.rmSync(c.root, { recursive: true, force: true });
  });
});
