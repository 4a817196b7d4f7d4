// The whole corpus decided up front, from the config alone: which sentence each split gets, who says
// it, in which chapter, and every per-utterance random choice (speed, noise level, noise seed). The
// workers only carry the plan out, so the output does not depend on how many there are or on which
// finishes first. (Flite's output for a sentence also depends on the sentence before it in the same
// run, through filter state: a chapter is always spoken as one run, in plan order.)
import { createHash } from 'node:crypto';
import { type DataConfig, grid, OTHER_SPLITS, type SpeakerSetting, SYNTH_SPLITS, type SynthSplit, TRAIN_SPLITS } from '../../config/data-schema.js';
import { Rng } from '../../util/rng.js';
import type { FliteVoice } from './flite.js';
import { type SynthSentence, type SentenceStats, synthSentences } from './sentences.js';

export interface Speaker extends SpeakerSetting {
  /** LibriSpeech-style numeric id. */
  id: string;
  role: 'train' | 'eval';
}

export interface PlannedUtterance {
  /** <spk>-<ch>-<utt>. */
  id: string;
  sentence: SynthSentence;
  /** Speed factor (tempo and pitch together), 1 outside the "other" splits. */
  speed: number;
  /** Active-speech SNR of added white noise in dB, or null for none. */
  snrDb: number | null;
  /** Seed of this utterance's noise. */
  seed: number;
}

export interface Chapter {
  split: SynthSplit;
  speaker: Speaker;
  chapter: string;
  utterances: PlannedUtterance[];
}

export interface Plan {
  speakers: Speaker[];
  chapters: Chapter[];
  sentenceStats: SentenceStats;
  /** Estimated seconds of audio per split. */
  estimated: Partial<Record<SynthSplit, number>>;
}

/** Seconds of speech per character of flite input at duration_stretch 1, measured on Brown. */
const SECONDS_PER_CHAR: Record<FliteVoice, number> = { slt: 0.0606, rms: 0.0683, awb: 0.0609, kal16: 0.0574 };

const FIRST_SPEAKER_ID = 100;
const FIRST_CHAPTER_ID = 1000;

function seedFor(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join('\0')).digest().readUInt32BE(0);
}

function speakersOf(cfg: DataConfig): Speaker[] {
  const train = grid(cfg.train_speakers).map((s) => ({ ...s, role: 'train' as const }));
  const evals = grid(cfg.eval_speakers).map((s) => ({ ...s, role: 'eval' as const }));
  return [...train, ...evals].map((s, i) => ({ id: String(FIRST_SPEAKER_ID + i), ...s }));
}

/** Training splits share the training speakers; eval speakers are dealt round-robin to the 4 eval splits. */
function speakersFor(split: SynthSplit, speakers: Speaker[]): Speaker[] {
  if (TRAIN_SPLITS.includes(split)) return speakers.filter((s) => s.role === 'train');
  const evals = speakers.filter((s) => s.role === 'eval');
  const evalSplits = SYNTH_SPLITS.filter((s) => !TRAIN_SPLITS.includes(s));
  const groups = Math.min(evalSplits.length, evals.length);
  const k = evalSplits.indexOf(split) % groups;
  return evals.filter((_, i) => i % groups === k);
}

export function makePlan(cfg: DataConfig): Plan {
  const { sentences, stats } = synthSentences(cfg.text.min_words, cfg.text.max_words);
  const order = new Rng(cfg.seed).permutation(sentences.length);
  const speakers = speakersOf(cfg);
  const chapters: Chapter[] = [];
  const estimated: Plan['estimated'] = {};
  let cursor = 0;
  let chapterId = FIRST_CHAPTER_ID;
  for (const split of SYNTH_SPLITS) {
    const target = cfg.hours[split] * 3600;
    if (target <= 0) continue;
    const who = speakersFor(split, speakers);
    const other = OTHER_SPLITS.includes(split);
    const train = TRAIN_SPLITS.includes(split);
    const rng = new Rng(seedFor(cfg.seed, split));
    const bySpeaker = new Map<Speaker, Omit<PlannedUtterance, 'id'>[]>(who.map((s) => [s, []]));
    let seconds = 0;
    for (let k = 0; seconds < target; k++) {
      if (cursor >= sentences.length) {
        throw new Error(`not enough sentences: the ${sentences.length} usable Brown sentences ran out in ${split}; ask for fewer hours (or widen text.min_words..max_words)`);
      }
      const sentence = sentences[order[cursor++]!]!;
      const speaker = who[k % who.length]!;
      // Every utterance draws the same three numbers, whatever its split, so a config change in
      // one noise setting does not reshuffle the others.
      const [u1, u2, u3] = [rng.next(), rng.next(), rng.next()];
      const speed = other ? Math.round(100 * lerp(cfg.other_speed, u1)) / 100 : 1;
      const snrDb = other ? lerp(cfg.noise.other_snr_db, u2) : train && u3 < cfg.noise.train_fraction ? lerp(cfg.noise.train_snr_db, u2) : null;
      seconds += (sentence.spoken.length * SECONDS_PER_CHAR[speaker.voice] * speaker.rate) / speed;
      bySpeaker.get(speaker)!.push({ sentence, speed, snrDb: snrDb === null ? null : Math.round(snrDb * 10) / 10, seed: 0 });
    }
    estimated[split] = seconds;
    for (const [speaker, utts] of bySpeaker) {
      for (let start = 0; start < utts.length; start += cfg.chapter_size) {
        const chapter = String(chapterId++);
        const utterances = utts.slice(start, start + cfg.chapter_size).map((u, i) => {
          const id = `${speaker.id}-${chapter}-${String(i).padStart(4, '0')}`;
          return { ...u, id, seed: seedFor(cfg.seed, id) };
        });
        chapters.push({ split, speaker, chapter, utterances });
      }
    }
  }
  return { speakers, chapters, sentenceStats: stats, estimated };
}

function lerp([lo, hi]: readonly [number, number], u: number): number {
  return lo + (hi - lo) * u;
}
