import { z } from 'zod';

/**
 * Config of the discrete speech tokenizer and of `zipper tokenize`. Everything in
 * SpeechTokenizerConfig is saved inside speech-tokenizer.json and decides the units; the tokenize
 * section only decides how the work is done (threads, bad-input policy), never which ids come out.
 */

/** Log-mel features (DATA.md, SCALE.md: 80 bins, 25 ms window, 10 ms hop at 16 kHz). */
export const MelConfig = z
  .object({
    sample_rate: z.number().int().positive().default(16000),
    n_mels: z.number().int().positive().default(80),
    win_ms: z.number().positive().default(25),
    hop_ms: z.number().positive().default(10),
    /** FFT size (a power of two at least the window length): the window is zero-padded to it. */
    n_fft: z.number().int().positive().default(512),
    fmin: z.number().min(0).default(0),
    /** Upper edge of the mel filters; null means half the sample rate. */
    fmax: z.number().positive().nullable().default(null),
    /**
     * Log-mel values are clamped to at most this many dB below the utterance's loudest mel value
     * (Whisper's 80 dB): digital silence and near-silence then share one value instead of
     * spreading over a huge negative range.
     */
    floor_db: z.number().positive().default(80),
  })
  .strict();
export type MelConfig = z.infer<typeof MelConfig>;

export const KmeansConfig = z
  .object({
    /** Codebook size K; the speech vocabulary is K + 3 (pad, begin and end of audio). */
    codebook_size: z.number().int().min(2).default(1024),
    /** Stacked vectors sampled from the unlabelled pool to learn the codebook on. */
    train_vectors: z.number().int().positive().default(150000),
    /** k-means++ picks its centres from a subsample of this many of them (it is sequential in K). */
    init_vectors: z.number().int().positive().default(16384),
    /** Lloyd iterations after k-means++. */
    iterations: z.number().int().min(0).default(12),
    seed: z.number().int().min(0).default(1234),
  })
  .strict();
export type KmeansConfig = z.infer<typeof KmeansConfig>;

export const SpeechTokenizerConfig = z
  .object({
    mel: MelConfig.default(MelConfig.parse({})),
    /** Log-mel frames stacked into one unit: 4 x 10 ms gives 25 units a second (the paper's rate). */
    stack: z.number().int().positive().default(4),
    /**
     * Mean/variance normalisation of each mel bin before stacking: over each utterance on its own
     * ("utterance", CMVN), over the whole pool ("global"), or none. Measured on 43 min of flite
     * speech from 8 voice settings, K=256: with "utterance" 28% of units fell in clusters one
     * speaker dominates, against 71% with "global" and 68% with none (SCALE.md's 75%), at the same
     * unigram entropy (7.84 / 7.81 / 7.81 bits): units that depend far less on the voice.
     */
    normalise: z.enum(['utterance', 'global', 'none']).default('utterance'),
    kmeans: KmeansConfig.default(KmeansConfig.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const win = Math.round((c.mel.win_ms / 1000) * c.mel.sample_rate);
    if (c.mel.n_fft & (c.mel.n_fft - 1) || c.mel.n_fft < win)
      ctx.addIssue({ code: 'custom', path: ['mel', 'n_fft'], message: `n_fft ${c.mel.n_fft} must be a power of two >= the window (${win} samples)` });
    const nyquist = c.mel.sample_rate / 2;
    if ((c.mel.fmax ?? nyquist) > nyquist || (c.mel.fmax ?? nyquist) <= c.mel.fmin)
      ctx.addIssue({ code: 'custom', path: ['mel', 'fmax'], message: `fmax must lie in (fmin, ${nyquist}]` });
    if (c.kmeans.train_vectors < c.kmeans.codebook_size)
      ctx.addIssue({ code: 'custom', path: ['kmeans', 'train_vectors'], message: `train_vectors ${c.kmeans.train_vectors} is fewer than codebook_size ${c.kmeans.codebook_size}` });
  });
export type SpeechTokenizerConfig = z.infer<typeof SpeechTokenizerConfig>;

export const TokenizeConfig = z
  .object({
    tokenizer: SpeechTokenizerConfig.default(SpeechTokenizerConfig.parse({})),
    /** Feature extraction + assignment threads; "auto" uses every core (at most 8). */
    workers: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
    /** A file that cannot be read (or has another sample rate, under "error"): stop, or skip it and count it in tokens.json. */
    on_bad_audio: z.enum(['stop', 'skip']).default('stop'),
    /** A file at another sample rate than the tokenizer's: resample it (counted in tokens.json), or treat it as bad audio. */
    other_sample_rate: z.enum(['resample', 'error']).default('resample'),
  })
  .strict();
export type TokenizeConfig = z.infer<typeof TokenizeConfig>;
