import type { TrainConfig } from '../config/schema.js';
import type { HostBatch, TrainEngine, TrainState } from '../engine/engine.js';
import { appendLine } from '../util/fs.js';
import { learningRate } from './schedule.js';

/** The slice of a pino logger the loop uses. */
export interface LoopLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface LoopProgress {
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

/** What the loop reads of a stage's training config. */
export type LoopConfig = Omit<TrainConfig, 'batch_tokens'>;

export interface LoopOptions {
  engine: TrainEngine;
  cfg: LoopConfig;
  /** Steps already done (0 for a fresh run, the checkpoint's step on resume). */
  startStep: number;
  /** Training batch for 0-based step index i: a pure function of i, so resume is exact. */
  batchAt(i: number): HostBatch;
  devBatches: readonly HostBatch[];
  /**
   * The stage's own evaluation instead of the mean loss over devBatches: its metrics (dev_loss
   * among them) are logged as one dev record; `stop` ends training early, with a checkpoint.
   */
  evaluate?(step: number): Promise<{ metrics: Record<string, number>; stop?: boolean }>;
  /** Tokens in batch i (a constant for packed LM windows). */
  tokensPerBatch: number | ((i: number) => number);
  /** Writes a checkpoint of `state` after `step` steps. */
  checkpoint(step: number, state: TrainState, metrics: Record<string, number>): Promise<void>;
  metricsPath: string;
  log: LoopLogger;
  progress: LoopProgress;
  /** Set by a signal handler: stop after the current step, with a checkpoint. */
  stopRequested?: () => boolean;
}

export interface LoopResult {
  step: number;
  interrupted: boolean;
  /** Stopped by the stage's evaluation (early stopping) before cfg.steps. */
  stoppedEarly?: boolean;
  trainLoss: number;
  devLoss: number;
}

/** Raised for a non-finite loss or gradient: names the step; nothing after the last checkpoint is kept. */
export class DivergenceError extends Error {}

/** Mean dev loss over fixed batches (each batch's mean weighted by its token count). */
export async function devLoss(engine: TrainEngine, batches: readonly HostBatch[]): Promise<number> {
  let sum = 0;
  let weight = 0;
  for (const b of batches) {
    const w = (b.weights!.data as Float32Array).reduce((a, x) => a + x, 0);
    sum += (await engine.evalLoss(b)) * w;
    weight += w;
  }
  return sum / weight;
}

/**
 * The engine-agnostic training loop: schedule, logging, periodic dev loss and checkpoints. Knows
 * nothing about the model or the engine beyond TrainEngine.
 */
export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const c = o.cfg;
  let step = o.startStep;
  let window = { loss: 0, n: 0, tokens: 0, t0: performance.now() };
  const tokensOf = (i: number) => (typeof o.tokensPerBatch === 'number' ? o.tokensPerBatch : o.tokensPerBatch(i));
  let lastTrain = NaN;
  let lastDev = NaN;
  o.progress.update(step);
  while (step < c.steps) {
    const lr = learningRate(c, step + 1);
    const { loss, gradNorm } = await o.engine.trainStep(o.batchAt(step), step + 1, lr);
    step++;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm))
      throw new DivergenceError(`training diverged at step ${step}: loss ${loss}, gradient norm ${gradNorm}; the last good checkpoint is kept (lower train.lr or raise warmup_steps, then --resume)`);
    window.loss += loss;
    window.n++;
    window.tokens += tokensOf(step - 1);
    lastTrain = loss;
    if (step % c.log_every === 0 || step === c.steps) {
      const secs = (performance.now() - window.t0) / 1000;
      const rec = { step, loss: window.loss / window.n, lr, grad_norm: gradNorm, tokens_per_s: Math.round(window.tokens / secs) };
      await appendLine(o.metricsPath, JSON.stringify({ kind: 'train', ...rec }));
      o.log.info(rec, 'train');
      window = { loss: 0, n: 0, tokens: 0, t0: performance.now() };
    }
    o.progress.update(step, { loss: lastTrain.toFixed(3) });
    const stopping = o.stopRequested?.() ?? false;
    let early = false;
    if (step % c.eval_every === 0 || step === c.steps) {
      let metrics: Record<string, number>;
      if (o.evaluate) {
        const r = await o.evaluate(step);
        metrics = r.metrics;
        early = Boolean(r.stop) && step < c.steps;
      } else metrics = { dev_loss: await devLoss(o.engine, o.devBatches) };
      lastDev = metrics.dev_loss!;
      const rec = { step, ...metrics, dev_ppl: Math.exp(lastDev) };
      await appendLine(o.metricsPath, JSON.stringify({ kind: 'dev', ...rec }));
      o.log.info(rec, 'dev');
    }
    if (step % c.checkpoint_every === 0 || step === c.steps || stopping || early) {
      await o.checkpoint(step, await o.engine.state(), { train_loss: lastTrain, ...(Number.isFinite(lastDev) ? { dev_loss: lastDev } : {}) });
    }
    if (stopping && step < c.steps) {
      o.progress.stop();
      return { step, interrupted: true, trainLoss: lastTrain, devLoss: lastDev };
    }
    if (early) {
      o.log.info({ step }, 'early stop: the dev loss stopped improving');
      o.progress.stop();
      return { step, interrupted: false, stoppedEarly: true, trainLoss: lastTrain, devLoss: lastDev };
    }
  }
  o.progress.stop();
  return { step, interrupted: false, trainLoss: lastTrain, devLoss: lastDev };
}
