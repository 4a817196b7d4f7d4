// The one manifest every speech stage reads: JSON lines, one utterance each. The built-in corpus,
// the LibriSpeech loader and the LibriTTS loader all produce it, so what comes after (features,
// tokens, towers) never knows where the audio came from.
//
//   {"id":"103-10000-0000","audio":"../LibriSpeech/train-aligned/103/10000/103-10000-0000.flac",
//    "duration":4.21,"text":"THE JURY SAID","speaker":"103","split":"train-aligned"}
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { BadInputPolicy } from '../config/data-schema.js';
import { writeFileAtomic } from '../util/fs.js';

export interface Utterance {
  id: string;
  /** Path relative to the manifest's folder, or absolute. */
  audio: string;
  /** Seconds. */
  duration: number;
  /** LibriSpeech style: upper case, apostrophes kept; '' for the unlabelled pool. */
  text: string;
  speaker: string;
  split: string;
}

const UtteranceSchema = z
  .object({
    id: z.string().min(1),
    audio: z.string().min(1),
    duration: z.number().positive().finite(),
    text: z.string(),
    speaker: z.string().min(1),
    split: z.string().min(1),
  })
  .strict();

/** Reads and validates every line; errors name the file and the line. Blank lines are allowed. */
export function readManifest(file: string): Utterance[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`manifest ${file}: ${code === 'ENOENT' ? 'file not found' : (err as Error).message}`, { cause: err });
  }
  const utts: Utterance[] = [];
  const ids = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not valid JSON: ${(err as Error).message}`);
    }
    const r = UtteranceSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const at = issue.path.length > 0 ? `"${issue.path.join('.')}": ` : '';
      throw new Error(`${where}: bad utterance: ${at}${issue.message}`);
    }
    const first = ids.get(r.data.id);
    if (first !== undefined) throw new Error(`${where}: duplicate id ${r.data.id} (first on line ${first})`);
    ids.set(r.data.id, i + 1);
    utts.push(r.data);
  });
  if (utts.length === 0) throw new Error(`manifest ${file}: no utterances (empty split)`);
  return utts;
}

/** One JSON line per utterance (keys in the interface's order), written atomically. */
export async function writeManifest(file: string, utts: readonly Utterance[]): Promise<void> {
  const lines = utts.map((u) => JSON.stringify({ id: u.id, audio: u.audio, duration: u.duration, text: u.text, speaker: u.speaker, split: u.split }));
  await writeFileAtomic(file, lines.map((l) => l + '\n').join(''));
}

/** The absolute path of an utterance's audio. */
export function resolveAudio(manifestFile: string, utt: Utterance): string {
  return isAbsolute(utt.audio) ? utt.audio : resolve(dirname(resolve(manifestFile)), utt.audio);
}

// ---------------------------------------------------------------------------------------------
// Transcripts

/** One token to a word: letters and inner apostrophes; '' when nothing is left. */
function cleanToken(token: string): string {
  let w = token.replace(/[^\p{L}']/gu, '');
  // A leading apostrophe is an opening quote ('pro'); then a trailing one closes it. Otherwise a
  // trailing apostrophe is a plural possessive (Texas') and stays, as in LibriSpeech.
  if (w.startsWith("'")) w = w.replace(/^'+/, '').replace(/'+$/, '');
  return /\p{L}/u.test(w) ? w : '';
}

/** A text's words, split at whitespace, hyphens and dashes: letters and inner apostrophes, as written. */
export function transcriptWords(text: string): string[] {
  return text
    .split(/[\s\-\u2013\u2014]+/)
    .map(cleanToken)
    .filter((w) => w !== '');
}

/**
 * A transcript in LibriSpeech style: upper case, punctuation gone but for apostrophes inside words,
 * hyphenated words split ("Texas' well-known law." -> "TEXAS' WELL KNOWN LAW"). Numbers and
 * abbreviations are not expanded: LibriTTS's normalized text has none but the odd "Mr.".
 */
export function librispeechStyle(text: string): string {
  return transcriptWords(text)
    .map((w) => w.toUpperCase())
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Bad input, shared by the corpus loaders.

/** The kinds of problem a loader finds; each is counted separately under the `skip` policy. */
export type BadInputKind = 'bad_audio' | 'wrong_sample_rate' | 'line_without_id' | 'empty_transcript' | 'id_without_audio' | 'audio_without_transcript' | 'duplicate_id';

/** A problem in the input data; `where` names the file (and line). */
export class BadInputError extends Error {
  override name = 'BadInputError';
  constructor(
    readonly kind: BadInputKind,
    readonly where: string,
    reason: string,
  ) {
    super(`${where}: ${reason}`);
  }
}

/** What a loader returns: the utterances it kept and what it skipped (for the run's record). */
export interface LoadResult {
  utterances: Utterance[];
  /** Skipped items per kind (all zero under `stop`, which throws at the first one instead). */
  skipped: Record<BadInputKind, number>;
  /** The skipped items' messages, in the order found. */
  problems: string[];
}

/** Collects problems under a policy: `stop` throws the first, `skip` counts them. */
export class BadInputLog {
  readonly skipped: Record<BadInputKind, number> = {
    bad_audio: 0,
    wrong_sample_rate: 0,
    line_without_id: 0,
    empty_transcript: 0,
    id_without_audio: 0,
    audio_without_transcript: 0,
    duplicate_id: 0,
  };
  readonly problems: string[] = [];

  constructor(readonly policy: BadInputPolicy) {}

  report(err: BadInputError): void {
    if (this.policy === 'stop') throw err;
    this.skipped[err.kind]++;
    this.problems.push(err.message);
  }

  result(utterances: Utterance[], splitDir: string): LoadResult {
    if (utterances.length === 0) {
      const why = this.problems.length > 0 ? ` (all ${this.problems.length} skipped; first: ${this.problems[0]})` : '';
      throw new Error(`${splitDir}: no utterances (empty split)${why}`);
    }
    return { utterances, skipped: { ...this.skipped }, problems: [...this.problems] };
  }
}
