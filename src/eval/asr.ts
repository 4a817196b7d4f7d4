import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { alignedSubset } from '../data/aligned.js';
import { readManifest } from '../data/manifest.js';
import { FusedDecoder } from '../decode/fused-decoder.js';
import type { EngineChoice } from '../engine/select.js';
import type { Modality } from '../config/schema.js';
import type { FusedModelJson, FusedRun } from '../train/fused.js';
import { manifestPath, readTokenSplit } from '../tokenizers/speech/tokenize.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Normalizer } from './normalize.js';
import { charErrorRate, formatAlignment, wordErrorRate, type AlignOp, type EditCounts } from './wer.js';

/**
 * ASR evaluation of a fine-tuned model on LibriSpeech-layout splits: the split's speech units (from
 * the token folder) are transcribed and scored against the manifest's transcripts, corpus-level WER
 * and CER with the counts, per-utterance recognitions and alignments written beside the summary
 * (as icefall's recogs-*.txt and errs-*.txt). An utterance longer than the speech tower can read
 * is not dropped: it is scored with an empty hypothesis (all deletions) and counted.
 */
export const TEXT_ROOM = 64;

/** What every split evaluation takes: the split, the subset, decoding, scoring and where results go. */
export interface SplitEvalOptions {
  corpus: string;
  split: string;
  /** Score at most this many utterances (a fixed, seeded choice); all when absent. */
  limit?: number;
  beam: number;
  batch: number;
  normalizer: Normalizer;
  /** Where the per-utterance files and summary.json (last) go. */
  out: string;
}

export interface AsrEvalOptions extends SplitEvalOptions {
  tokens: string;
}

export interface AsrResult {
  split: string;
  checkpoint: string;
  step: number;
  utterances: number;
  too_long: number;
  wer: number;
  cer: number;
  counts: EditCounts;
  beam: number;
  normalizer: Normalizer;
  seconds: number;
  /** Per utterance: id, reference, hypothesis, word errors, reference words (for paired tests). */
  per_utterance: { id: string; ref: string; hyp: string; errors: number; words: number }[];
}

export async function evalAsrSplit(run: FusedRun, choice: EngineChoice, o: AsrEvalOptions): Promise<AsrResult> {
  const t0 = performance.now();
  const refs = new Map(readManifest(manifestPath(o.corpus, o.split)).map((u) => [u.id, u.text]));
  let utts = readTokenSplit(o.tokens, o.split).filter((u) => refs.has(u.id));
  if (!utts.length) throw new Error(`split ${o.split}: no utterance has both units in ${o.tokens} and a transcript in ${manifestPath(o.corpus, o.split)}`);
  utts = evalSubset(utts, o.limit);
  const room = inputRoom(run.json, 'speech');
  const fits = utts.filter((u) => u.units.length <= room);
  const dec = await FusedDecoder.open(run, choice);
  let hyps: Map<string, string>;
  try {
    const got = await dec.transcribe(fits.map((u) => u.units), { beam: o.beam, batch: o.batch });
    hyps = new Map(fits.map((u, i) => [u.id, got[i]!.text.trim()]));
  } finally {
    dec.dispose();
  }
  const pairs = utts.map((u) => ({ id: u.id, ref: refs.get(u.id)!, hyp: hyps.get(u.id) ?? '' }));
  const w = wordErrorRate(pairs, o.normalizer);
  const c = charErrorRate(pairs, o.normalizer);
  const per = pairs.map((p, i) => {
    const k = w.perUtterance[i]!.counts;
    return { id: p.id, ref: p.ref, hyp: p.hyp, errors: k.substitutions + k.deletions + k.insertions, words: k.refWords };
  });
  const result: AsrResult = {
    split: o.split,
    checkpoint: run.checkpoint,
    step: run.step,
    utterances: utts.length,
    too_long: utts.length - fits.length,
    wer: w.wer,
    cer: c.cer,
    counts: w.counts,
    beam: o.beam,
    normalizer: o.normalizer,
    seconds: (performance.now() - t0) / 1000,
    per_utterance: per,
  };
  await writeEvalFiles(
    o.out,
    pairs.map((p) => ({ id: p.id, fields: { ref: p.ref, hyp: p.hyp } })),
    pairs.map((p, i) => ({ head: p.id, ...w.perUtterance[i]! })),
    result,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// Shared with the TTS evaluation (tts.ts): which utterances, how long an input fits, what is written.

/** At most `limit` utterances, a fixed seeded choice (the same for every model scored). */
export function evalSubset<T extends { id: string }>(utts: readonly T[], limit: number | undefined): T[] {
  return limit && limit < utts.length ? alignedSubset(utts, limit / utts.length, 0) : [...utts];
}

/**
 * Input tokens (without begin/end tokens) a model can read: its tower's positions for the zipper.
 * The single decoder shares its positions between input and output, so an ASR input leaves room for
 * a transcript of TEXT_ROOM tokens, and a TTS input is a transcript of at most that (the rest is
 * the speech's).
 */
export function inputRoom(j: FusedModelJson, from: Modality): number {
  if (j.architecture === 'zipper') return j.zipper![from].max_len - 2;
  return from === 'speech' ? j.single!.shape.max_len - 3 - TEXT_ROOM : TEXT_ROOM - 2;
}

/**
 * recogs.txt (a `<id>\t<name>=<text>` line per field), errs.txt (one sclite-style alignment per
 * entry, headed by its counts) and summary.json, each written atomically; the summary last, so
 * that its presence means the evaluation finished.
 */
export async function writeEvalFiles(
  out: string,
  recogs: readonly { id: string; fields: Record<string, string> }[],
  errs: readonly { head: string; counts: EditCounts; ops: readonly AlignOp[] }[],
  summary: unknown,
): Promise<void> {
  mkdirSync(out, { recursive: true });
  await writeFileAtomic(join(out, 'recogs.txt'), recogs.map((r) => Object.entries(r.fields).map(([k, v]) => `${r.id}\t${k}=${v}\n`).join('')).join(''));
  await writeFileAtomic(
    join(out, 'errs.txt'),
    errs.map((e) => `${e.head}: ${e.counts.substitutions} sub, ${e.counts.deletions} del, ${e.counts.insertions} ins of ${e.counts.refWords}\n${formatAlignment(e.ops)}\n`).join('\n'),
  );
  await writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
