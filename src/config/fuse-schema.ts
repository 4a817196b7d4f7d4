import { z } from 'zod';
import { BackendRequest, EngineName, OrtConfig, TrainConfig } from './schema.js';

/**
 * The fine-tuning stage (`zipper fuse`): two pretrained towers zipped (or the text tower's
 * vocabulary expanded, the single-decoder baseline) and trained on a fraction of the aligned data.
 * Paper defaults where the paper gives them (PAPERS.md); our own choices are marked as such.
 */

export const ZipConfig = z
  .object({
    /** Zipped layer pairs N: tower A's layer n * floor(L_A / N) meets B's n * floor(L_B / N). */
    layers: z.number().int().positive().default(2),
    /** ReLU(MLP(embed(x))) per tower (the paper has both; removing the text one hurt most). */
    input_projection: z.object({ text: z.boolean().default(true), speech: z.boolean().default(true) }).strict().default({ text: true, speech: true }),
    /** Linear layers per input projection (3 in the paper). */
    input_projection_layers: z.number().int().positive().default(3),
    /**
     * Linear layers of the projection g between towers (the paper: "MLP + ReLU"; 2 is ours). 0: no
     * g, the other tower's states go to the cross-attention's keys/values as they are (towers of one
     * width only); with context_norm, after a LayerNorm.
     */
    context_projection_layers: z.number().int().min(0).default(2),
    /** LayerNorm on the other tower's states before g (ours; the paper is silent). Flamingo's media come normalised. */
    context_norm: z.boolean().default(false),
    /** Initial value of the tanh gates: the paper's 0 (SCALE.md: open gates learn sooner at small scale). */
    gate_init: z.number().default(0),
    /** Cross-attention q/k/v init: GPT-2's std 0.02 (as the towers), or Xavier's 1/sqrt(d) (listens sooner, README). */
    cross_init: z.enum(['gpt2', 'xavier']).default('gpt2'),
  })
  .strict();

export const SingleDecoderConfig = z
  .object({
    /** Start from the pretrained text tower (the paper, DMLM's better option) or from scratch. */
    init: z.enum(['pretrained', 'scratch']).default('pretrained'),
    /** Unimodal LM examples (text-only and speech-only, half each) per aligned example (DMLM). */
    unimodal_ratio: z.number().min(0).default(0),
    /** Loss mean over all target tokens ("token"), or DMLM's mean of per-modality means ("modality"). */
    loss: z.enum(['token', 'modality']).default('token'),
  })
  .strict();

export const FuseData = z
  .object({
    /** Corpus root with manifests/ (transcripts): `zipper data synth` output or a LibriSpeech import. */
    corpus: z.string().min(1).default('data/synth'),
    /** Token folder from `zipper tokenize` (default: <corpus>/tokens). */
    tokens: z.string().min(1).optional(),
    train_split: z.string().min(1).default('train-aligned'),
    dev_split: z.string().min(1).default('dev-clean'),
    /** Share of the aligned training utterances used: nested, deterministic subsets. */
    fraction: z.number().gt(0).max(1).default(1),
    /** Examples per aligned utterance and epoch, per task (the paper mixed ASR : TTS about 1 : 1.26). */
    tasks: z.object({ asr: z.number().min(0).default(1), tts: z.number().min(0).default(1.26) }).strict().default({ asr: 1, tts: 1.26 }),
    /** Transcripts reach the text tower lower-cased (closer to its prose) or as written (upper case). */
    text_case: z.enum(['lower', 'as_is']).default('lower'),
    /** Dev utterances scored at each evaluation (a fixed subset of dev_split). */
    dev_utterances: z.number().int().positive().default(200),
    /** The single decoder's unimodal speech comes from here (never the aligned data). */
    unlabelled_split: z.string().min(1).default('train-unlabelled'),
  })
  .strict();

export const FuseTrain = TrainConfig.omit({ batch_tokens: true })
  .extend({
    /** Utterances (examples) per optimizer step. */
    batch_size: z.number().int().positive().default(16),
    /** The zipper's new layers (zip.*) learn at this multiple of lr (SCALE.md); 1 is the paper's single rate. */
    new_layer_lr_mult: z.number().positive().default(1),
    /**
     * Which dev figure picks the best checkpoint and drives early stopping: the loss over both
     * tasks, or one task's (with little aligned data TTS overfits first while ASR still improves).
     */
    select_on: z.enum(['dev_loss', 'dev_asr_loss', 'dev_tts_loss']).default('dev_loss'),
    /** Evaluations without a better dev loss before stopping early; 0 never stops early. */
    patience: z.number().int().min(0).default(0),
  })
  .strict();
export type FuseTrain = z.infer<typeof FuseTrain>;

export const Architecture = z.enum(['zipper', 'single-decoder']);

export const FuseConfig = z
  .object({
    architecture: Architecture.default('zipper'),
    /** Pretraining run folders (`zipper pretrain` output); --text / --speech set them. */
    text_tower: z.string().default(''),
    speech_tower: z.string().default(''),
    /** Towers whose own weights stay fixed (the zipper; the single decoder trains everything). */
    freeze: z.enum(['none', 'text', 'speech', 'both']).default('text'),
    seed: z.number().int().min(0).default(1234),
    engine: EngineName.default('auto'),
    backend: BackendRequest.default('auto'),
    // Many batch shapes (length buckets): without the arena, memory stays at one shape's peak.
    ort: OrtConfig.extend({ memory_arena: z.boolean().default(false) }).default(OrtConfig.parse({ memory_arena: false })),
    zip: ZipConfig.default(ZipConfig.parse({})),
    single_decoder: SingleDecoderConfig.default(SingleDecoderConfig.parse({})),
    data: FuseData.default(FuseData.parse({})),
    train: FuseTrain.default(FuseTrain.parse({ lr: 5e-4 })),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.text_tower) ctx.addIssue({ code: 'custom', path: ['text_tower'], message: 'no text tower: pass --text runs/<text-tower-run> or set text_tower' });
    if (!c.speech_tower) ctx.addIssue({ code: 'custom', path: ['speech_tower'], message: 'no speech tower: pass --speech runs/<speech-tower-run> or set speech_tower' });
    if (c.data.tasks.asr === 0 && c.data.tasks.tts === 0) ctx.addIssue({ code: 'custom', path: ['data', 'tasks'], message: 'both task weights are 0: nothing to train on' });
    for (const task of ['asr', 'tts'] as const)
      if (c.train.select_on === `dev_${task}_loss` && c.data.tasks[task] === 0)
        ctx.addIssue({ code: 'custom', path: ['train', 'select_on'], message: `${c.train.select_on} needs ${task} examples, but data.tasks.${task} is 0` });
  });
export type FuseConfig = z.infer<typeof FuseConfig>;
