// Brown sentences made speakable and transcribable the LibriSpeech way: what flite says is exactly
// what the transcript says.
//
// Policy: a sentence is DROPPED, not rewritten, when flite would say something its written form does
// not show: digits and symbols ("1913", "$5", "&", "%": flite expands them its own way), abbreviations
// ("Mr.", "Jan.", "U.S.": any period before the end) and acronyms ("GOP", "ADC": flite spells some
// out). Spelling digits ourselves would put flite's number grammar or ours into the transcripts; with
// ~35k of Brown's ~55k sentences left there is no need. What is kept: words of letters and
// apostrophes; hyphens and dashes split words ("multi-million" -> MULTI MILLION); quotes, brackets
// and final punctuation go; commas, semicolons and colons become pauses (commas) in what flite reads.
import { librispeechStyle, transcriptWords } from '../manifest.js';
import { brownSentences } from '../text.js';

export interface SynthSentence {
  /** The Brown sentence as written (LibriTTS's .original.txt). */
  original: string;
  /** LibriSpeech style: upper case, apostrophes kept, single spaces. */
  text: string;
  /** What flite reads: lower case words and commas (lower case so it never spells a word out). */
  spoken: string;
}

export interface SentenceStats {
  brown: number;
  kept: number;
  dropped: { symbols: number; abbreviations: number; acronyms: number; length: number; duplicates: number };
}

const ALLOWED = /^[A-Za-z' ,.;:?!"()-]+$/;
const FINAL_PUNCT = /[.?!]+["')]*\s*$/;

/** The speakable form of a Brown sentence, or why it is dropped. */
export function normaliseSentence(
  original: string,
  minWords: number,
  maxWords: number,
): SynthSentence | keyof SentenceStats['dropped'] {
  if (!ALLOWED.test(original)) return 'symbols';
  if (/[.?!]/.test(original.replace(FINAL_PUNCT, ''))) return 'abbreviations';
  const tokens = original.split(/[\s-]+/);
  if (tokens.some((t) => /^[A-Z]{2,}$/.test(t.replace(/[^A-Za-z]/g, '')) && !/[a-z]/.test(t))) return 'acronyms';
  const spoken: string[] = [];
  for (const t of tokens) {
    const [w] = transcriptWords(t);
    if (w === undefined) continue;
    spoken.push(w.toLowerCase() + (/[,;:]["')]*$/.test(t) ? ',' : ''));
  }
  if (spoken.length < minWords || spoken.length > maxWords) return 'length';
  const last = spoken.length - 1;
  spoken[last] = spoken[last]!.replace(/,$/, '');
  return { original, text: librispeechStyle(original), spoken: spoken.join(' ') };
}

const cache = new Map<string, { sentences: SynthSentence[]; stats: SentenceStats }>();

/** Brown's speakable sentences in corpus order, without duplicates (kept per process: ~2 s to make). */
export function synthSentences(minWords: number, maxWords: number): { sentences: SynthSentence[]; stats: SentenceStats } {
  const key = `${minWords}/${maxWords}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const brown = brownSentences();
  const stats: SentenceStats = { brown: brown.length, kept: 0, dropped: { symbols: 0, abbreviations: 0, acronyms: 0, length: 0, duplicates: 0 } };
  const seen = new Set<string>();
  const sentences: SynthSentence[] = [];
  for (const s of brown) {
    const r = normaliseSentence(s, minWords, maxWords);
    if (typeof r === 'string') stats.dropped[r]++;
    else if (seen.has(r.text)) stats.dropped.duplicates++;
    else {
      seen.add(r.text);
      sentences.push(r);
    }
  }
  stats.kept = sentences.length;
  cache.set(key, { sentences, stats });
  return { sentences, stats };
}
