// Text normalisation for scoring: reference and hypothesis go through the same function, so a
// difference in case or punctuation never counts as a recognition error.
import { librispeechStyle } from '../data/manifest.js';

/** How transcripts are normalised before scoring. */
export type Normalizer = 'librispeech' | 'none';

/**
 * A transcript in LibriSpeech style, for scoring: upper case, punctuation gone but for apostrophes
 * inside words, hyphens and dashes split words, whitespace collapsed.
 *
 * This is `librispeechStyle` from the manifest module, not a copy of it: the references in every
 * manifest were written by that function, so a hypothesis normalised any other way would be scored
 * against text cleaned by different rules (one definition of each thing). Its choices therefore hold
 * here too: a trailing apostrophe after letters stays (plural possessive, "Texas'" -> "TEXAS'", as
 * LibriSpeech writes it) unless the word also opened with one (a quote, "'pro'" -> "PRO"); anything
 * that is not a letter or apostrophe, digits included, is dropped, since numbers are not expanded.
 */
export function normalizeTranscript(text: string): string {
  return librispeechStyle(text);
}

/** Applies a normaliser; 'none' only collapses whitespace and trims, so case and punctuation count. */
export function normalizeFor(n: Normalizer, text: string): string {
  switch (n) {
    case 'librispeech':
      return normalizeTranscript(text);
    case 'none':
      return text.replace(/\s+/g, ' ').trim();
    default:
      // Unreachable from typed code; a config read as plain JSON could still name another one.
      throw new Error(`unknown normalizer "${String(n)}" (expected 'librispeech' or 'none')`);
  }
}
