import { z } from 'zod';
import { FLITE_VOICES } from '../data/synth/flite.js';

/**
 * Config of the data stage: `zipper data synth` (the built-in corpus) and `zipper data manifest`
 * (the real corpora's loaders). Keys are snake_case; every object is strict.
 */

/** The splits of the built-in corpus, in the order they take sentences from the shuffled pool. */
export const SYNTH_SPLITS = ['train-aligned', 'train-unlabelled', 'dev-clean', 'test-clean', 'dev-other', 'test-other'] as const;
export type SynthSplit = (typeof SYNTH_SPLITS)[number];
export const TRAIN_SPLITS: readonly SynthSplit[] = ['train-aligned', 'train-unlabelled'];
export const OTHER_SPLITS: readonly SynthSplit[] = ['dev-other', 'test-other'];

const Hours = z.number().min(0);
const Range = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo <= hi, { message: 'range [lo, hi] needs lo <= hi' });

/** A speaker is one (voice, rate, pitch) setting; a set of them is the cross product of three lists. */
export const SpeakerGrid = z
  .object({
    voices: z.array(z.enum(FLITE_VOICES)).min(1),
    /** flite's duration_stretch: 1.1 speaks 10% slower. */
    rates: z.array(z.number().min(0.5).max(2)).min(1),
    /** Mean-pitch factor (flite's f0_shift; rms ignores it, so rms gets a resampling shift). */
    pitches: z.array(z.number().min(0.7).max(1.4)).min(1),
  })
  .strict();
export type SpeakerGrid = z.infer<typeof SpeakerGrid>;

export const BadInputPolicy = z.enum(['stop', 'skip']);
export type BadInputPolicy = z.infer<typeof BadInputPolicy>;

export const DataConfig = z
  .object({
    /** The corpus folder: LibriSpeech/, LibriTTS/, manifests/ and corpus.json go in it. */
    root: z.string().min(1).default('data/synth'),
    seed: z.number().int().min(0).default(1234),
    /** Synthesis worker threads; 0 means os.availableParallelism(). Does not change the output. */
    workers: z.number().int().min(0).default(0),
    /** Target hours per split (met to within a few percent: sentence lengths are estimated). 0 skips a split. */
    hours: z
      .object({
        'train-aligned': Hours.default(10),
        'train-unlabelled': Hours.default(5),
        'dev-clean': Hours.default(0.5),
        'test-clean': Hours.default(0.5),
        'dev-other': Hours.default(0.5),
        'test-other': Hours.default(0.5),
      })
      .strict()
      .prefault({}),
    text: z
      .object({
        min_words: z.number().int().min(1).default(4),
        max_words: z.number().int().min(1).default(25),
      })
      .strict()
      .prefault({}),
    /** Speakers of train-aligned and train-unlabelled. */
    train_speakers: SpeakerGrid.default({ voices: ['kal16'], rates: [0.85, 0.95, 1.05, 1.15], pitches: [0.85, 0.95, 1.05, 1.15] }),
    /**
     * Speakers of the dev/test splits: every setting must be unseen in training. They are dealt
     * round-robin to dev-clean, test-clean, dev-other, test-other, so those four are disjoint too
     * when there are at least four.
     */
    eval_speakers: SpeakerGrid.default({ voices: ['kal16'], rates: [0.9, 1.0, 1.1], pitches: [0.9, 1.0, 1.1] }),
    /** Utterances per chapter; a chapter is also one flite run (one batch) in one worker. */
    chapter_size: z.number().int().min(1).max(9999).default(50),
    noise: z
      .object({
        /** White noise at this level (dB re full scale) in every utterance: no split has digital silence. */
        dither_dbfs: z.number().max(-30).nullable().default(-70),
        /** Share of training utterances (both pools) that get background noise as well. */
        train_fraction: z.number().min(0).max(1).default(0.3),
        /** Active-speech SNR range of that training noise, dB. */
        train_snr_db: Range.default([15, 35]),
        /** SNR range for every dev-other/test-other utterance, dB. */
        other_snr_db: Range.default([20, 30]),
      })
      .strict()
      .prefault({}),
    /** dev-other/test-other: each utterance sped up or slowed down (tempo and pitch together) by a factor in this range. */
    other_speed: Range.default([0.9, 1.1]),
    libritts: z
      .object({
        /** Splits that also get a LibriTTS-layout copy (wav + .normalized.txt). */
        splits: z.array(z.enum(SYNTH_SPLITS)).default(['test-clean']),
        sample_rate: z.number().int().positive().default(24000),
      })
      .strict()
      .prefault({}),
    /** Loaders (`zipper data manifest`): stop at the first bad file or line, or skip and count. */
    bad_input: BadInputPolicy.default('stop'),
    /** Loaders: decode every audio file (finds truncated/corrupt ones) rather than read headers only. */
    verify_audio: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.text.min_words > c.text.max_words) {
      ctx.addIssue({ code: 'custom', path: ['text', 'min_words'], message: `min_words ${c.text.min_words} exceeds max_words ${c.text.max_words}` });
    }
    const key = (v: string, r: number, p: number) => `${v}/${r}/${p}`;
    const train = new Set(grid(c.train_speakers).map((s) => key(s.voice, s.rate, s.pitch)));
    const seen = grid(c.eval_speakers).filter((s) => train.has(key(s.voice, s.rate, s.pitch)));
    if (seen.length > 0) {
      const s = seen[0]!;
      ctx.addIssue({ code: 'custom', path: ['eval_speakers'], message: `eval speakers must be unseen in training, but ${s.voice} rate ${s.rate} pitch ${s.pitch} is in train_speakers` });
    }
    if (Object.values(c.hours).every((h) => h === 0)) ctx.addIssue({ code: 'custom', path: ['hours'], message: 'every split has 0 hours: nothing to build' });
    if (c.other_speed[0] <= 0) ctx.addIssue({ code: 'custom', path: ['other_speed'], message: 'speed factors must be positive' });
  });
export type DataConfig = z.infer<typeof DataConfig>;

export interface SpeakerSetting {
  voice: (typeof FLITE_VOICES)[number];
  rate: number;
  pitch: number;
}

/** The cross product voices x rates x pitches, voice-major, duplicates removed. */
export function grid(g: SpeakerGrid): SpeakerSetting[] {
  const out: SpeakerSetting[] = [];
  const seen = new Set<string>();
  for (const voice of g.voices) {
    for (const rate of g.rates) {
      for (const pitch of g.pitches) {
        const k = `${voice}/${rate}/${pitch}`;
        if (!seen.has(k)) out.push({ voice, rate, pitch });
        seen.add(k);
      }
    }
  }
  return out;
}
