import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { hashOf, sha256Hex } from '../config/hash.js';
import { towerText } from '../data/aligned.js';
import { readAudioAt } from '../data/audio.js';
import { readManifest, resolveAudio } from '../data/manifest.js';
import { FusedDecoder } from '../decode/fused-decoder.js';
import type { EngineChoice } from '../engine/select.js';
import type { FusedRun } from '../train/fused.js';
import { readJsonFile, writeFileAtomic, writeJsonFile } from '../util/fs.js';
import { evalSubset, inputRoom, writeEvalFiles, type SplitEvalOptions } from './asr.js';
import { assertSameTokenizers, readJudgeRecord, runFolderOf } from './judge.js';
import { normalizeFor, type Normalizer } from './normalize.js';
import { charErrorRate, wordErrorRate, type EditCounts } from './wer.js';

/**
 * TTS evaluation as the paper's Table 2: the model under test speaks each transcript of a
 * LibriTTS-layout split (speech units), the judge (an ASR model, `zipper judge train`) transcribes
 * what it said, and the transcript is scored against the gold transcript and against the judge's
 * transcript of the gold speech units ("target": what the judge makes of real speech). The oracle
 * row, the judge on gold units against the gold transcript, bounds what the judge can tell apart.
 *
 * Gold units are the utterance's audio through the speech tokenizer both models share. The
 * judge's targets are the same for every system, so they are kept in the judge's run folder and
 * reused. An input a model cannot read (a transcript longer than the subject's text room, units
 * longer than the judge's) is scored as an empty hypothesis and counted, as `eval asr` does.
 */
export const libriTtsManifest = (corpus: string, split: string) => join(corpus, 'manifests', `libritts-${split}.jsonl`);

/** `out` gets units.jsonl beside recogs.txt, errs.txt and summary.json. */
export interface TtsEvalOptions extends SplitEvalOptions {
  /** Accept a --judge that `zipper judge train` did not make (with a warning). */
  anyJudge?: boolean;
  /** Notes and warnings for people (stderr). */
  log?: (line: string) => void;
}

/** A fine-tuned model and the path the user named it by (for messages). */
export interface NamedRun {
  path: string;
  run: FusedRun;
}

/** Everything read and checked before any decoding. */
export interface TtsPlan {
  subject: NamedRun;
  judge: NamedRun;
  manifest: string;
  manifestSha: string;
  utts: { id: string; ref: string; textTokens: number; gold: number[] }[];
  o: TtsEvalOptions;
}

export interface TtsUtterance {
  id: string;
  ref: string;
  target: string;
  hyp: string;
  /** False when the transcript is longer than the subject can read: nothing said, hyp empty. */
  spoken: boolean;
  errors_gold: number;
  words_gold: number;
  /** null when no target has a word (the judge said nothing on any gold utterance). */
  errors_target: number | null;
  words_target: number | null;
  units_gold: number;
  units_synth: number;
}

export interface TtsResult {
  split: string;
  manifest: string;
  utterances: number;
  system: { run: string; architecture: string; checkpoint: string; step: number };
  judge: { run: string; checkpoint: string; step: number };
  wer_gold: number;
  /** null when no target has a word. */
  wer_target: number | null;
  wer_oracle: number;
  cer_gold: number;
  counts: { gold: EditCounts; target: EditCounts | null; oracle: EditCounts };
  /** Inputs scored as empty: transcripts the subject cannot read, units the judge cannot read. */
  too_long: { text: number; synthesized: number; gold: number };
  /** Over the utterances synthesized: a ratio well above 1 or many outputs at max means looping. */
  units: { utterances: number; gold_mean: number; synth_mean: number; ratio: number; synth_max: number; synth_empty: number };
  targets: { file: string; reused: boolean };
  beam: number;
  normalizer: Normalizer;
  seconds: number;
  per_utterance: TtsUtterance[];
}

/**
 * Reads and checks the inputs: the subject is not a judge, the judge is one, both share their
 * tokenizers, the split's manifest and audio are there. Encodes the gold units.
 */
export async function planTtsEval(subject: NamedRun, judge: NamedRun, o: TtsEvalOptions): Promise<TtsPlan> {
  const log = o.log ?? (() => {});
  if (readJudgeRecord(subject.path)) throw new Error(`--run ${subject.path} is a judge (${join(runFolderOf(subject.path), 'judge.json')}): a judge is never a subject of the comparison`);
  const rec = readJudgeRecord(judge.path);
  if (!rec) {
    const why = `--judge ${judge.path} was not made by \`zipper judge train\` (no judge.json in ${runFolderOf(judge.path)})`;
    if (!o.anyJudge) throw new Error(`${why}; train one with zipper judge train, or pass --any-judge to use this model anyway`);
    log(`warning: ${why}; using it as the judge (--any-judge)`);
  } else if (rec.interrupted) log(`warning: the judge ${judge.path} was interrupted at step ${rec.steps}: finish it with zipper judge train --resume`);
  assertSameTokenizers(subject, judge);

  const manifest = libriTtsManifest(o.corpus, o.split);
  let text: string;
  try {
    text = readFileSync(manifest, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--split ${o.split}: LibriTTS-layout manifest ${manifest}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message} (zipper data synth writes one for each split in libritts.splits)`);
  }
  const all = readManifest(manifest);
  const untranscribed = all.find((u) => !u.text.trim());
  if (untranscribed) throw new Error(`${manifest}: utterance ${untranscribed.id} has an empty transcript; TTS needs a text to speak`);
  const chosen = evalSubset(all, o.limit);
  const tok = judge.run.speech;
  const rate = tok.config.mel.sample_rate;
  const gold = chosen.map((u) => {
    const file = resolveAudio(manifest, u);
    return tok.encodeAudio(readAudioAt(file, rate).samples, rate, file);
  });
  const ids = await subject.run.text.encodeBatch(chosen.map((u) => towerText(u.text, subject.run.json.text_case)));
  const utts = chosen.map((u, i) => ({ id: u.id, ref: u.text, textTokens: ids[i]!.length, gold: gold[i]! }));
  return { subject, judge, manifest, manifestSha: sha256Hex(text), utts, o };
}

export async function evalTtsSplit(plan: TtsPlan, choice: EngineChoice): Promise<TtsResult> {
  const t0 = performance.now();
  return judgeSpeech(plan, choice, await speak(plan, choice), t0);
}

/** What the subject said: unit ids per utterance ([] where it could not read the transcript). */
export interface Speech {
  synth: number[][];
  speaks: boolean[];
}

/** The subject speaks every transcript it can read. */
export async function speak(plan: TtsPlan, choice: EngineChoice): Promise<Speech> {
  const textRoom = inputRoom(plan.subject.run.json, 'text');
  const speaks = plan.utts.map((u) => u.textTokens <= textRoom);
  const spoken = plan.utts.flatMap((_, i) => (speaks[i] ? [i] : []));
  const synth: number[][] = plan.utts.map(() => []);
  const dec = await FusedDecoder.open(plan.subject.run, choice);
  try {
    const got = await dec.synthesize(spoken.map((i) => plan.utts[i]!.ref), { beam: plan.o.beam, batch: plan.o.batch });
    spoken.forEach((i, k) => (synth[i] = got[k]!));
  } finally {
    dec.dispose();
  }
  return { synth, speaks };
}

/** The judge transcribes what was said; scored against gold and target, written to plan.o.out. */
export async function judgeSpeech(plan: TtsPlan, choice: EngineChoice, speech: Speech, t0 = performance.now()): Promise<TtsResult> {
  const { judge, utts, o } = plan;
  const { synth, speaks } = speech;
  const log = o.log ?? (() => {});
  const decode = { beam: o.beam, batch: o.batch };
  const spoken = utts.flatMap((_, i) => (speaks[i] ? [i] : []));

  // The judge transcribes the gold units (once per judge, split and choice) and the synthesized ones.
  // Both are unit ids of the shared speech tokenizer (offset included), as the token folder holds
  // them and as `eval asr` feeds them: the judge reads exactly what the subject said.
  const cache = targetsCache(plan);
  const jdec = await FusedDecoder.open(judge.run, choice);
  let targets: { texts: string[]; tooLong: number };
  let hyps: { texts: string[]; tooLong: number };
  let reused = false;
  try {
    const room = inputRoom(judge.run.json, 'speech');
    const kept = readTargets(cache.file, cache.record.ids, log);
    if (kept) {
      targets = kept;
      reused = true;
      log(`targets: reused ${cache.file}`);
    } else {
      targets = await transcribeFitting(jdec, utts.map((u) => u.gold), room, decode);
      mkdirSync(dirname(cache.file), { recursive: true });
      await writeJsonFile(cache.file, { ...cache.record, targets: targets.texts, too_long: targets.tooLong });
      log(`targets: wrote ${cache.file}`);
    }
    hyps = await transcribeFitting(jdec, spoken.map((i) => synth[i]!), room, decode);
  } finally {
    jdec.dispose();
  }
  const hypOf = new Map(spoken.map((i, k) => [i, hyps.texts[k]!]));
  const rows = utts.map((u, i) => ({ id: u.id, ref: u.ref, target: targets.texts[i]!, hyp: hypOf.get(i) ?? '' }));
  const { result, alignments } = score(plan, rows, synth, speaks, { text: speaks.filter((s) => !s).length, synthesized: hyps.tooLong, gold: targets.tooLong }, { file: cache.file, reused });
  result.seconds = (performance.now() - t0) / 1000;
  // units.jsonl before summary.json, which writeEvalFiles writes last: its presence means done.
  mkdirSync(o.out, { recursive: true });
  await writeFileAtomic(join(o.out, 'units.jsonl'), utts.map((u, i) => JSON.stringify({ id: u.id, gold: u.gold, synth: synth[i] }) + '\n').join(''));
  await writeEvalFiles(
    o.out,
    rows.map((r) => ({ id: r.id, fields: { ref: r.ref, target: r.target, hyp: r.hyp } })),
    rows.flatMap((r, i) => [{ head: `${r.id} vs gold`, ...alignments.gold[i]! }, ...(alignments.target ? [{ head: `${r.id} vs target`, ...alignments.target[i]! }] : [])]),
    result,
  );
  return result;
}

async function transcribeFitting(dec: FusedDecoder, units: readonly (readonly number[])[], room: number, o: { beam: number; batch: number }): Promise<{ texts: string[]; tooLong: number }> {
  const fits = units.flatMap((u, i) => (u.length <= room ? [i] : []));
  const got = await dec.transcribe(fits.map((i) => units[i]!), o);
  const texts = units.map(() => '');
  fits.forEach((i, k) => (texts[i] = got[k]!.text.trim()));
  return { texts, tooLong: units.length - fits.length };
}

const TARGETS_FORMAT = 'zipper-tts-targets/1';

interface TargetsRecord {
  format: typeof TARGETS_FORMAT;
  split: string;
  manifest_sha256: string;
  ids: string[];
  gold_units_sha256: string;
  beam: number;
  judge_checkpoint: string;
  judge_step: number;
}

/**
 * Where the judge's targets for this plan live: `<judge>/eval/tts-targets/<split>-<hash>.json`, the
 * hash over what they depend on (the utterances and their gold units, the beam, the judge's
 * checkpoint). The batch size is left out: it only changes padding.
 */
function targetsCache(plan: TtsPlan): { file: string; record: TargetsRecord } {
  const judgeDir = runFolderOf(plan.judge.path);
  const record: TargetsRecord = {
    format: TARGETS_FORMAT,
    split: plan.o.split,
    manifest_sha256: plan.manifestSha,
    ids: plan.utts.map((u) => u.id),
    gold_units_sha256: sha256Hex(JSON.stringify(plan.utts.map((u) => u.gold))),
    beam: plan.o.beam,
    judge_checkpoint: relative(judgeDir, plan.judge.run.checkpoint),
    judge_step: plan.judge.run.step,
  };
  return { file: join(judgeDir, 'eval', 'tts-targets', `${plan.o.split}-${hashOf(record)}.json`), record };
}

function readTargets(file: string, ids: readonly string[], log: (line: string) => void): { texts: string[]; tooLong: number } | null {
  if (!existsSync(file)) return null;
  try {
    const r = readJsonFile<{ ids: string[]; targets: string[]; too_long: number }>(file, 'targets cache');
    if (r.ids.length === ids.length && r.ids.every((id, i) => id === ids[i]) && r.targets.length === ids.length) return { texts: r.targets, tooLong: r.too_long };
    log(`targets: ${file} does not match this split's utterances; computing them again`);
  } catch (e) {
    log(`targets: ${(e as Error).message}; computing them again`);
  }
  return null;
}

/** The three WERs (and CER against gold), per utterance and over the split. */
function score(plan: TtsPlan, rows: { id: string; ref: string; target: string; hyp: string }[], synth: number[][], speaks: boolean[], tooLong: TtsResult['too_long'], targets: TtsResult['targets']) {
  const { subject, judge, utts, o } = plan;
  const n = o.normalizer;
  const gold = wordErrorRate(rows.map((r) => ({ ref: r.ref, hyp: r.hyp })), n);
  const oracle = wordErrorRate(rows.map((r) => ({ ref: r.ref, hyp: r.target })), n);
  // A judge that said nothing on every gold utterance leaves WER against its targets undefined.
  const anyTarget = rows.some((r) => normalizeFor(n, r.target) !== '');
  const vsTarget = anyTarget ? wordErrorRate(rows.map((r) => ({ ref: r.target, hyp: r.hyp })), n) : null;
  const errors = (k: EditCounts) => k.substitutions + k.deletions + k.insertions;
  const per = rows.map((r, i) => {
    const kg = gold.perUtterance[i]!.counts;
    const kt = vsTarget?.perUtterance[i]!.counts;
    return { ...r, spoken: speaks[i]!, errors_gold: errors(kg), words_gold: kg.refWords, errors_target: kt ? errors(kt) : null, words_target: kt ? kt.refWords : null, units_gold: utts[i]!.gold.length, units_synth: synth[i]!.length };
  });
  const spoken = utts.flatMap((_, i) => (speaks[i] ? [i] : []));
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const goldMean = mean(spoken.map((i) => utts[i]!.gold.length));
  const synthMean = mean(spoken.map((i) => synth[i]!.length));
  const result: TtsResult = {
    split: o.split,
    manifest: plan.manifest,
    utterances: rows.length,
    system: { run: subject.path, architecture: subject.run.json.architecture, checkpoint: subject.run.checkpoint, step: subject.run.step },
    judge: { run: judge.path, checkpoint: judge.run.checkpoint, step: judge.run.step },
    wer_gold: gold.wer,
    wer_target: vsTarget ? vsTarget.wer : null,
    wer_oracle: oracle.wer,
    cer_gold: charErrorRate(rows.map((r) => ({ ref: r.ref, hyp: r.hyp })), n).cer,
    counts: { gold: gold.counts, target: vsTarget ? vsTarget.counts : null, oracle: oracle.counts },
    too_long: tooLong,
    units: {
      utterances: spoken.length,
      gold_mean: goldMean,
      synth_mean: synthMean,
      ratio: goldMean > 0 ? synthMean / goldMean : 0,
      synth_max: Math.max(0, ...spoken.map((i) => synth[i]!.length)),
      synth_empty: spoken.filter((i) => synth[i]!.length === 0).length,
    },
    targets,
    beam: o.beam,
    normalizer: n,
    seconds: 0,
    per_utterance: per,
  };
  return { result, alignments: { gold: gold.perUtterance, target: vsTarget ? vsTarget.perUtterance : null } };
}
