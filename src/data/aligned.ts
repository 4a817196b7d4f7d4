import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../config/hash.js';
import { readTokenSplit, TOKENS_FILE, manifestPath, type TokensRecord } from '../tokenizers/speech/tokenize.js';
import type { TextTokenizer } from '../tokenizers/text.js';
import { readManifest } from './manifest.js';

/**
 * Aligned speech-text data for fine-tuning: each utterance's transcript (from the corpus manifest)
 * and its speech units (from the token folder `zipper tokenize` wrote), matched by id.
 */
export interface AlignedUtterance {
  id: string;
  speaker: string;
  seconds: number;
  /** The manifest's transcript (LibriSpeech style). */
  transcript: string;
  /** Text tower ids of the transcript, without specials. */
  text: number[];
  /** Speech tower ids (unit ids, offset included), without specials. */
  speech: number[];
}

export interface AlignedSplit {
  split: string;
  utterances: AlignedUtterance[];
  /** Utterances dropped because a tower's sequence would not fit its max_len. */
  tooLong: number;
}

/** How transcripts meet the text tower: as written (upper case) or lower-cased like its prose. */
export type TextCase = 'lower' | 'as_is';

export function towerText(transcript: string, c: TextCase): string {
  return c === 'lower' ? transcript.toLowerCase() : transcript;
}

export interface LoadAlignedOptions {
  corpus: string;
  tokens: string;
  split: string;
  textTokenizer: TextTokenizer;
  textCase: TextCase;
  /** Longest sequence each tower takes, specials included. */
  maxText: number;
  maxSpeech: number;
}

/**
 * Joins a split's manifest and token file. Fails when the token folder was made from another
 * manifest than the corpus has now, when an utterance has units but no transcript (or the
 * reverse), or when a transcript is empty.
 */
export async function loadAligned(o: LoadAlignedOptions): Promise<AlignedSplit> {
  const recFile = join(o.tokens, TOKENS_FILE);
  let rec: TokensRecord;
  try {
    rec = JSON.parse(readFileSync(recFile, 'utf8')) as TokensRecord;
  } catch (e) {
    throw new Error(`token folder ${o.tokens}: cannot read ${TOKENS_FILE} (${(e as Error).message}): run zipper tokenize`);
  }
  const mfile = manifestPath(o.corpus, o.split);
  let mtext: string;
  try {
    mtext = readFileSync(mfile, 'utf8');
  } catch (e) {
    throw new Error(`aligned split ${o.split}: cannot read manifest ${mfile} (${(e as Error).message})`);
  }
  const recorded = rec.manifests?.[o.split]?.sha256;
  if (recorded && recorded !== sha256Hex(mtext))
    throw new Error(`${mfile} is not the manifest ${recFile} was tokenized from (sha256 differs): run zipper tokenize --corpus ${o.corpus} again`);
  const byId = new Map(readManifest(mfile).map((u) => [u.id, u]));
  const units = readTokenSplit(o.tokens, o.split);
  const kept = units.filter((u) => byId.has(u.id));
  if (kept.length !== units.length) throw new Error(`${recFile}: split ${o.split} has ${units.length - kept.length} utterance(s) missing from ${mfile}, e.g. ${units.find((u) => !byId.has(u.id))!.id}`);
  const tokenized = new Set(units.map((u) => u.id));
  const missing = [...byId.keys()].filter((id) => !tokenized.has(id));
  if (missing.length && !rec.splits[o.split]?.skipped)
    throw new Error(`${mfile}: ${missing.length} utterance(s) have no speech tokens in ${o.tokens}, e.g. ${missing[0]}`);
  const empty = kept.find((u) => !byId.get(u.id)!.text.trim());
  if (empty) throw new Error(`${mfile}: utterance ${empty.id} has an empty transcript; aligned data needs one for every utterance`);
  const texts = await o.textTokenizer.encodeBatch(kept.map((u) => towerText(byId.get(u.id)!.text, o.textCase)));
  const utterances: AlignedUtterance[] = [];
  let tooLong = 0;
  kept.forEach((u, i) => {
    const m = byId.get(u.id)!;
    if (texts[i]!.length + 2 > o.maxText || u.units.length + 2 > o.maxSpeech) {
      tooLong++;
      return;
    }
    utterances.push({ id: u.id, speaker: m.speaker, seconds: m.duration, transcript: m.text, text: texts[i]!, speech: u.units });
  });
  if (!utterances.length) throw new Error(`aligned split ${o.split}: no utterance fits the towers (text max_len ${o.maxText}, speech max_len ${o.maxSpeech})`);
  return { split: o.split, utterances, tooLong };
}

/**
 * The first round(fraction * N) utterances in an order fixed by (seed, id), so subsets are nested:
 * every utterance of the 1% subset is in the 10% subset. Fails for a fraction outside (0, 1] or
 * one that selects nothing.
 */
export function alignedSubset<T extends { id: string }>(utts: readonly T[], fraction: number, seed: number): T[] {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`aligned fraction ${fraction} is not in (0, 1]`);
  const n = Math.round(fraction * utts.length);
  if (n < 1) throw new Error(`aligned fraction ${fraction} of ${utts.length} utterances selects none (the smallest that selects one is ${(0.5 / utts.length).toPrecision(2)})`);
  const rank = (id: string) => createHash('sha256').update(`${seed}:${id}`).digest('hex');
  const ranked = utts.map((u) => ({ u, r: rank(u.id) })).sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0));
  return ranked.slice(0, n).map((x) => x.u);
}

export const hoursOf = (utts: readonly { seconds: number }[]) => utts.reduce((s, u) => s + u.seconds, 0) / 3600;
