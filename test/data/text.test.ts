import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { brownSentences, detokenize, loadTextCorpus, readTextSource, splitTrainDev } from '../../src/data/text.js';

const brown = brownSentences();

describe('brownSentences', () => {
  test('gives tens of thousands of sentences in a fixed order', () => {
    assert.ok(brown.length > 30_000, `only ${brown.length} sentences`);
    assert.equal(
      brown[0],
      "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election " +
        'produced "no evidence" that any irregularities took place.',
    );
    assert.deepEqual(loadTextCorpus('brown').slice(0, 50), brown.slice(0, 50));
  });

  test('strips every POS tag and detokenises quotes', () => {
    // Common tags right after a word; Brown's own slashes ("1-1/2", "and/or", "/l/") are text.
    const tagged = brown.filter((s) => /[A-Za-z]\/(at|nn|nns|vbd|vbz|in|np|jj|cc|rb|pps)(-hl|-tl)?\b/.test(s));
    assert.deepEqual(tagged.slice(0, 3), []);
    assert.ok(!brown.some((s) => s.includes('``') || s.includes("''")));
    // (" :35.3" is a lap time, hence the lookahead.)
    const spaced = brown.filter((s) => / ([,;?!)]|[.:](?!\d))/.test(s.replace(/ "/g, '')));
    assert.deepEqual(spaced, [], 'space before punctuation');
    assert.ok(brown.some((s) => s.includes('1-1/2')), 'a slash inside a word must survive');
  });

  test('keeps 3..60 words per sentence', () => {
    for (const s of brown) {
      const words = s.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
      assert.ok(words >= 3 && words <= 60, `${words} words: ${s}`);
    }
  });
});

describe('detokenize', () => {
  test('joins clitics, brackets, quotes and a doubled final period', () => {
    assert.equal(
      detokenize(['He', 'do', "n't", 'know', '(', 'really', ')', ',', '``', 'Yes', "''", '.']),
      'He don\'t know (really), "Yes".',
    );
    assert.equal(detokenize(['the', "'", 'Met', "'", 'again']), "the 'Met' again");
    assert.equal(detokenize(['Ivan', 'Allen', 'Jr.', '.']), 'Ivan Allen Jr.');
    assert.equal(detokenize(['a', "12''", "''", 'bar']), 'a 12" bar');
  });
});

describe('readTextSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-text-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a folder recursively, .txt only, sorted, trimmed non-empty lines', () => {
    const root = join(dir, 'corpus');
    mkdirSync(join(root, 'b'), { recursive: true });
    writeFileSync(join(root, 'b', 'x.txt'), 'third\r\n\r\n  fourth  \n');
    writeFileSync(join(root, 'a.txt'), '\uFEFFfirst\nsecond\n');
    writeFileSync(join(root, 'notes.md'), 'ignored\n');
    assert.deepEqual(readTextSource(root), ['first', 'second', 'third', 'fourth']);
    assert.deepEqual(loadTextCorpus(join(root, 'a.txt')), ['first', 'second']);
  });

  test('a missing path is named', () => {
    const missing = join(dir, 'nope.txt');
    assert.throws(() => readTextSource(missing), (e: Error) => e.message.includes(missing));
  });

  test('non-UTF-8 bytes name the file and the offset', () => {
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, Buffer.from([0x66, 0xff, 0xfe]));
    assert.throws(() => readTextSource(bad), (e: Error) => e.message.includes(bad) && /offset 1\b/.test(e.message));
    const nested = join(dir, 'nested');
    mkdirSync(nested);
    writeFileSync(join(nested, 'ok.txt'), 'fine\n');
    writeFileSync(join(nested, 'late.txt'), Buffer.concat([Buffer.from('héllo\n'), Buffer.from([0xc3])]));
    assert.throws(() => readTextSource(nested), /late\.txt.*offset 7\b/);
  });

  test('an empty corpus is an error', () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, ' \n\n\t\n');
    assert.throws(() => readTextSource(empty), { message: `empty corpus: ${empty} has no non-empty lines` });
  });
});

describe('splitTrainDev', () => {
  test('is deterministic, roughly the asked fraction, order preserved', () => {
    const a = splitTrainDev(brown, 0.1, 7);
    assert.deepEqual(splitTrainDev(brown, 0.1, 7), a);
    assert.equal(a.train.length + a.dev.length, brown.length);
    assert.ok(Math.abs(a.dev.length / brown.length - 0.1) < 0.01, `dev fraction ${a.dev.length / brown.length}`);
    const dev = new Set(a.dev);
    assert.deepEqual(brown.filter((s) => dev.has(s)), a.dev);
    assert.deepEqual(brown.filter((s) => !dev.has(s)), a.train);
    assert.notDeepEqual(splitTrainDev(brown, 0.1, 8).dev.slice(0, 20), a.dev.slice(0, 20));
  });

  test('appending sentences never moves old ones', () => {
    const old = brown.slice(0, 5000);
    const before = splitTrainDev(old, 0.2, 1);
    const afterAppend = splitTrainDev([...old, ...brown.slice(5000, 6000)], 0.2, 1);
    assert.deepEqual(afterAppend.train.slice(0, before.train.length), before.train);
    assert.deepEqual(afterAppend.dev.slice(0, before.dev.length), before.dev);
  });

  test('rejects a fraction outside (0, 1)', () => {
    for (const f of [0, 1, -0.1, 1.5, NaN]) assert.throws(() => splitTrainDev(['a'], f, 0), /devFraction/);
  });
});
