// Word and character error rates, computed as icefall, ESPnet and jiwer compute them: a
// minimum-edit-distance alignment per utterance, then the corpus rate as all errors over all
// reference words. Averaging per-utterance rates instead would let a one-word utterance weigh as
// much as a fifty-word one, and the numbers would not compare with published LibriSpeech results.
import { normalizeFor, type Normalizer } from './normalize.js';

/** The outcome of aligning a hypothesis against a reference. */
export interface EditCounts {
  substitutions: number;
  deletions: number;
  insertions: number;
  hits: number;
  /** Reference tokens: words for WER, characters for CER (the rate's denominator). */
  refWords: number;
}

/** One column of an alignment: a reference token, a hypothesis token, or both. */
export type AlignOp = { op: 'hit' | 'sub'; ref: string; hyp: string } | { op: 'del'; ref: string } | { op: 'ins'; hyp: string };

/**
 * A minimum-edit-distance alignment (Levenshtein, every substitution, deletion and insertion costs
 * one) with its backtrace. O(n*m) time and memory in a typed array: fine for utterances of a few
 * hundred words, or a few thousand characters.
 *
 * The total S + D + I is the edit distance whatever the tie-breaking, but how it splits into S, D
 * and I is not: "A B" against "B A" is two substitutions, or a deletion, a hit and an insertion.
 * Walking back from the ends, ties go to the diagonal (hit or substitution), then to a deletion,
 * then to an insertion, so that equal-length mistakes read as substitutions, as sclite prints them,
 * and the same input always gives the same columns.
 */
export function alignWords(ref: readonly string[], hyp: readonly string[]): { ops: AlignOp[]; counts: EditCounts } {
  const n = ref.length;
  const m = hyp.length;
  const w = m + 1;
  // d[i * w + j]: edit distance between ref[0, i) and hyp[0, j).
  const d = new Uint32Array((n + 1) * w);
  for (let j = 0; j <= m; j++) d[j] = j;
  for (let i = 1; i <= n; i++) {
    d[i * w] = i;
    const r = ref[i - 1];
    for (let j = 1; j <= m; j++) {
      const diag = d[(i - 1) * w + j - 1]! + (r === hyp[j - 1] ? 0 : 1);
      const del = d[(i - 1) * w + j]! + 1;
      const ins = d[i * w + j - 1]! + 1;
      d[i * w + j] = Math.min(diag, del, ins);
    }
  }

  const ops: AlignOp[] = [];
  const counts: EditCounts = { substitutions: 0, deletions: 0, insertions: 0, hits: 0, refWords: n };
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    const here = d[i * w + j]!;
    if (i > 0 && j > 0) {
      const same = ref[i - 1] === hyp[j - 1];
      if (here === d[(i - 1) * w + j - 1]! + (same ? 0 : 1)) {
        ops.push({ op: same ? 'hit' : 'sub', ref: ref[i - 1]!, hyp: hyp[j - 1]! });
        if (same) counts.hits++;
        else counts.substitutions++;
        i--;
        j--;
        continue;
      }
    }
    if (i > 0 && here === d[(i - 1) * w + j]! + 1) {
      ops.push({ op: 'del', ref: ref[i - 1]! });
      counts.deletions++;
      i--;
    } else {
      ops.push({ op: 'ins', hyp: hyp[j - 1]! });
      counts.insertions++;
      j--;
    }
  }
  ops.reverse();
  return { ops, counts };
}

/** A transcript pair: what was said and what the recogniser produced. */
export interface TranscriptPair {
  ref: string;
  hyp: string;
}

/**
 * Corpus word error rate, (S + D + I) / N with N the reference words of all utterances together.
 * Both sides are normalised the same way, then split at whitespace; an empty hypothesis is all
 * deletions. The rate can pass 1 when the hypotheses insert more than the references hold.
 * Throws when the references have no words at all, where the rate has no meaning.
 */
export function wordErrorRate(
  pairs: readonly TranscriptPair[],
  normalizer: Normalizer = 'librispeech',
): { wer: number; counts: EditCounts; perUtterance: { counts: EditCounts; ops: AlignOp[] }[] } {
  const perUtterance = pairs.map((p) => alignWords(words(normalizeFor(normalizer, p.ref)), words(normalizeFor(normalizer, p.hyp))));
  const counts = sumCounts(perUtterance.map((u) => u.counts));
  return { wer: errorRate(counts, 'words'), counts, perUtterance };
}

/**
 * Corpus character error rate, the same as `wordErrorRate` over characters. The characters are
 * those of the normalised text with the spaces removed, so CER measures spelling alone and a word
 * boundary put in the wrong place ("NOBODY" for "NO BODY") costs nothing here; WER already counts
 * it. Characters are Unicode code points, not UTF-16 units, so a letter outside the BMP is one.
 */
export function charErrorRate(pairs: readonly TranscriptPair[], normalizer: Normalizer = 'librispeech'): { cer: number; counts: EditCounts } {
  const counts = sumCounts(pairs.map((p) => alignWords(chars(normalizeFor(normalizer, p.ref)), chars(normalizeFor(normalizer, p.hyp))).counts));
  return { cer: errorRate(counts, 'characters'), counts };
}

/**
 * An alignment in three lines, as icefall's errs-* files and sclite print it:
 *
 *   REF: THE CAT SAT *** ON
 *   HYP: THE BAT SAT MAT ON
 *      :     S       I
 *
 * Each column is as wide as the wider of its two tokens; a missing token is `***`; the third line
 * marks substitutions, deletions and insertions and is blank under hits. Trailing spaces are trimmed.
 */
export function formatAlignment(ops: readonly AlignOp[]): string {
  const refLine: string[] = [];
  const hypLine: string[] = [];
  const markLine: string[] = [];
  for (const o of ops) {
    const r = o.op === 'ins' ? '***' : o.ref;
    const h = o.op === 'del' ? '***' : o.hyp;
    const mark = o.op === 'hit' ? '' : o.op === 'sub' ? 'S' : o.op === 'del' ? 'D' : 'I';
    const width = Math.max(codePoints(r), codePoints(h));
    refLine.push(pad(r, width));
    hypLine.push(pad(h, width));
    markLine.push(pad(mark, width));
  }
  return [`REF: ${refLine.join(' ')}`, `HYP: ${hypLine.join(' ')}`, `   : ${markLine.join(' ')}`].map((l) => l.trimEnd()).join('\n');
}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

function chars(text: string): string[] {
  return Array.from(text.replace(/\s+/g, ''));
}

function sumCounts(all: readonly EditCounts[]): EditCounts {
  const total: EditCounts = { substitutions: 0, deletions: 0, insertions: 0, hits: 0, refWords: 0 };
  for (const c of all) {
    total.substitutions += c.substitutions;
    total.deletions += c.deletions;
    total.insertions += c.insertions;
    total.hits += c.hits;
    total.refWords += c.refWords;
  }
  return total;
}

function errorRate(c: EditCounts, unit: string): number {
  if (c.refWords === 0) throw new Error(`error rate undefined: the references have no ${unit} (after normalisation)`);
  return (c.substitutions + c.deletions + c.insertions) / c.refWords;
}

function codePoints(s: string): number {
  return Array.from(s).length;
}

function pad(s: string, width: number): string {
  return s + ' '.repeat(width - codePoints(s));
}
