import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeFor, normalizeTranscript } from '../../src/eval/normalize.js';
import { alignWords, charErrorRate, formatAlignment, wordErrorRate, type EditCounts } from '../../src/eval/wer.js';
import { Rng } from '../../src/util/rng.js';

const split = (s: string) => s.split(' ').filter((w) => w !== '');
const errors = (c: EditCounts) => c.substitutions + c.deletions + c.insertions;

test('identical transcripts have no errors', () => {
  const r = wordErrorRate([{ ref: 'THE CAT SAT ON THE MAT', hyp: 'THE CAT SAT ON THE MAT' }]);
  assert.equal(r.wer, 0);
  assert.deepEqual(r.counts, { substitutions: 0, deletions: 0, insertions: 0, hits: 6, refWords: 6 });
});

test('a missing word is one deletion', () => {
  const r = wordErrorRate([{ ref: 'THE CAT SAT', hyp: 'THE CAT' }]);
  assert.deepEqual(r.counts, { substitutions: 0, deletions: 1, insertions: 0, hits: 2, refWords: 3 });
  assert.equal(r.wer, 1 / 3);
  assert.deepEqual(r.perUtterance[0]!.ops, [
    { op: 'hit', ref: 'THE', hyp: 'THE' },
    { op: 'hit', ref: 'CAT', hyp: 'CAT' },
    { op: 'del', ref: 'SAT' },
  ]);
});

test('an extra word is one insertion', () => {
  const r = wordErrorRate([{ ref: 'THE CAT SAT', hyp: 'THE BIG CAT SAT' }]);
  assert.deepEqual(r.counts, { substitutions: 0, deletions: 0, insertions: 1, hits: 3, refWords: 3 });
  assert.equal(r.wer, 1 / 3);
  assert.deepEqual(r.perUtterance[0]!.ops[1], { op: 'ins', hyp: 'BIG' });
});

test('a wrong word is one substitution', () => {
  const r = wordErrorRate([{ ref: 'THE CAT SAT', hyp: 'THE HAT SAT' }]);
  assert.deepEqual(r.counts, { substitutions: 1, deletions: 0, insertions: 0, hits: 2, refWords: 3 });
  assert.equal(r.wer, 1 / 3);
  assert.deepEqual(r.perUtterance[0]!.ops[1], { op: 'sub', ref: 'CAT', hyp: 'HAT' });
});

test('an empty hypothesis is all deletions', () => {
  const r = wordErrorRate([{ ref: 'THE CAT SAT', hyp: '' }]);
  assert.deepEqual(r.counts, { substitutions: 0, deletions: 3, insertions: 0, hits: 0, refWords: 3 });
  assert.equal(r.wer, 1);
});

test('a hypothesis longer than the reference can pass 100%', () => {
  const r = wordErrorRate([{ ref: 'YES', hyp: 'NO NO NO NO' }]);
  assert.equal(errors(r.counts), 4);
  assert.equal(r.wer, 4);
});

test('ties go to substitutions, not a deletion and an insertion', () => {
  // "A B" -> "B A" costs 2 either as two substitutions or as del A, hit B, ins A.
  const { ops, counts } = alignWords(['A', 'B'], ['B', 'A']);
  assert.deepEqual(counts, { substitutions: 2, deletions: 0, insertions: 0, hits: 0, refWords: 2 });
  assert.deepEqual(ops.map((o) => o.op), ['sub', 'sub']);
});

test('the corpus rate is all errors over all reference words, not the mean of utterance rates', () => {
  const r = wordErrorRate([
    { ref: 'HELLO', hyp: 'YELLOW' }, // 1 error in 1 word: 100%
    { ref: 'ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE', hyp: 'ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE' }, // 0%
  ]);
  assert.equal(r.counts.refWords, 10);
  assert.equal(r.wer, 0.1); // the mean of rates would be 0.5
  assert.equal(r.perUtterance.length, 2);
  assert.equal(errors(r.perUtterance[0]!.counts), 1);
  assert.equal(errors(r.perUtterance[1]!.counts), 0);
});

test('references with no words are an error', () => {
  assert.throws(() => wordErrorRate([{ ref: '!!', hyp: 'HELLO' }]), /references have no words/);
  assert.throws(() => wordErrorRate([]), /references have no words/);
});

test('the LibriSpeech normaliser removes case, punctuation and dashes from both sides', () => {
  const pair = { ref: "Don't stop\u2014now!", hyp: "DON'T STOP NOW" };
  const norm = wordErrorRate([pair]);
  assert.equal(errors(norm.counts), 0);
  assert.equal(norm.wer, 0);
  const raw = wordErrorRate([pair], 'none');
  assert.ok(errors(raw.counts) > 0, `expected errors without normalisation, got ${JSON.stringify(raw.counts)}`);
});

test('normalisation rules', () => {
  assert.equal(normalizeTranscript("  \"Don't\" stop\u2014now,   well-known \u2013 'quoted'!  "), "DON'T STOP NOW WELL KNOWN QUOTED");
  assert.equal(normalizeFor('librispeech', 'a\tb'), 'A B');
  assert.equal(normalizeFor('none', "  Don't\t stop\n now! "), "Don't stop now!");
});

test('S+D+I equals a plain recursive edit distance on random sequences', () => {
  const rng = new Rng(2024);
  const vocab = ['A', 'B', 'C', 'D'];
  const seq = () => Array.from({ length: rng.int(11) }, () => vocab[rng.int(vocab.length)]!);
  for (let t = 0; t < 200; t++) {
    const ref = seq();
    const hyp = seq();
    const { ops, counts } = alignWords(ref, hyp);
    const want = editDistance(ref, hyp);
    const label = `ref [${ref.join(' ')}] hyp [${hyp.join(' ')}]`;
    assert.equal(errors(counts), want, label);
    assert.equal(counts.hits + counts.substitutions + counts.deletions, ref.length, label);
    assert.equal(counts.hits + counts.substitutions + counts.insertions, hyp.length, label);
    assert.equal(counts.refWords, ref.length, label);
    // The ops spell out both sequences, and hits are equal words, substitutions unequal ones.
    assert.deepEqual(ops.flatMap((o) => (o.op === 'ins' ? [] : [o.ref])), ref, label);
    assert.deepEqual(ops.flatMap((o) => (o.op === 'del' ? [] : [o.hyp])), hyp, label);
    for (const o of ops) if (o.op === 'hit' || o.op === 'sub') assert.equal(o.ref === o.hyp, o.op === 'hit', label);
  }
});

test('formatAlignment prints sclite-style columns', () => {
  const { ops } = alignWords(split('THE CAT SAT ON'), split('THE BAT SAT MAT ON'));
  assert.equal(formatAlignment(ops), ['REF: THE CAT SAT *** ON', 'HYP: THE BAT SAT MAT ON', '   :     S       I'].join('\n'));
  // Columns take the wider word; walking back from the end, the tie goes to the substitution.
  const del = alignWords(split('A LONGWORD C'), split('A XY'));
  assert.equal(formatAlignment(del.ops), ['REF: A LONGWORD C', 'HYP: A ***      XY', '   :   D        S'].join('\n'));
  assert.equal(formatAlignment([]), 'REF:\nHYP:\n   :');
});

test('character error rate counts characters without spaces', () => {
  const r = charErrorRate([{ ref: 'the cat', hyp: 'THE CAR' }]);
  assert.deepEqual(r.counts, { substitutions: 1, deletions: 0, insertions: 0, hits: 5, refWords: 6 });
  assert.equal(r.cer, 1 / 6);
  // A misplaced word boundary costs words but no characters.
  assert.equal(charErrorRate([{ ref: 'NO BODY', hyp: 'NOBODY' }]).cer, 0);
  assert.equal(wordErrorRate([{ ref: 'NO BODY', hyp: 'NOBODY' }]).wer, 1);
  assert.throws(() => charErrorRate([{ ref: '', hyp: 'X' }]), /no characters/);
});

/** Textbook Levenshtein distance by memoised recursion, independent of the typed-array version. */
function editDistance(a: readonly string[], b: readonly string[]): number {
  const memo = new Map<string, number>();
  const go = (i: number, j: number): number => {
    if (i === 0) return j;
    if (j === 0) return i;
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const v = Math.min(go(i - 1, j) + 1, go(i, j - 1) + 1, go(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
    memo.set(key, v);
    return v;
  };
  return go(a.length, b.length);
}
