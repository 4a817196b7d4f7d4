import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PretrainConfig, type TowerShape } from '../config/schema.js';
import { formatConfig } from '../config/load.js';
import { speechCorpus, textCorpus } from '../data/tower-corpus.js';
import { EpochSampler, lmBatch, packWindows } from '../data/lm.js';
import { initialState, type HostBatch, type TrainState } from '../engine/engine.js';
import { chooseEngine, createTrainEngine } from '../engine/select.js';
import { countParams, initParams } from '../model/params.js';
import { towerModel } from '../model/tower.js';
import { createLogger } from '../run/log.js';
import { createProgress } from '../run/progress.js';
import { assertSameConfig, createRunDir, saveResolvedConfig } from '../run/rundir.js';
import { writeFileAtomic } from '../util/fs.js';
import { CHECKPOINT_FORMAT, latestCheckpoint, loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './checkpoint.js';
import { trainLoop } from './loop.js';
import { recordEngine, stopOnSignal } from './stage.js';

export interface PretrainOptions {
  cfg: PretrainConfig;
  runsDir: string;
  name?: string;
  resume: boolean;
  /** Progress bars; default: when stderr is a terminal. */
  progress?: boolean;
  quiet?: boolean;
}

export interface PretrainSummary {
  run: string;
  steps: number;
  interrupted: boolean;
  train_loss: number;
  dev_loss: number;
  dev_ppl: number;
  unigram_dev_ppl: number;
  params: number;
  engine: string;
  seconds: number;
}

/** Keys a resumed run may change: training longer is the same experiment. */
const RESUMABLE_CHANGES = ['train.steps', 'engine', 'backend', 'ort'];

/**
 * A tower's pretraining stage, for either modality: token sequences (BPE text, or speech units)
 * -> packed windows -> tower, with periodic dev perplexity and checkpoints, resumable at any
 * checkpoint.
 */
export async function pretrainTower(o: PretrainOptions): Promise<PretrainSummary> {
  const cfg = o.cfg;
  const t0 = performance.now();
  const run = createRunDir(o.runsDir, o.name, { resume: o.resume, prefix: `${cfg.modality}-tower` });
  if (o.resume && existsSync(run.configPath)) assertSameConfig(run, cfg, RESUMABLE_CHANGES, PretrainConfig);
  else await saveResolvedConfig(run, cfg);
  const log = createLogger({ jsonlPath: run.logPath, quiet: o.quiet ?? false });

  const choice = await chooseEngine(cfg.engine, cfg.backend, cfg.ort);

  const corpus = cfg.modality === 'text' ? await textCorpus(cfg, run.dir) : speechCorpus(cfg);
  const trainWin = packWindows(corpus.train, corpus.bos, corpus.eos, cfg.data.seq_len);
  const devWin = packWindows(corpus.dev, corpus.bos, corpus.eos, cfg.data.seq_len);
  const rows = Math.floor(cfg.train.batch_tokens / cfg.data.seq_len);
  if (devWin.length < rows) throw new Error(`dev split of ${cfg.data.source} has ${devWin.length} windows of ${cfg.data.seq_len} tokens, fewer than one batch (${rows}): raise data.dev_fraction or lower train.batch_tokens`);
  const sampler = new EpochSampler(trainWin.length, rows, cfg.seed);
  const dataHash = hashWindows(trainWin);
  const unigram = unigramPerplexity(trainWin, devWin, corpus.vocabSize);
  log.info({ ...corpus.info, train_windows: trainWin.length, dev_windows: devWin.length, vocab: corpus.vocabSize, unigram_dev_ppl: unigram }, 'data ready');

  const shape: TowerShape = { ...cfg.model, vocab_size: corpus.vocabSize };
  const model = towerModel(shape);
  const engine = createTrainEngine(choice, model, { betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: cfg.train.weight_decay, clipNorm: cfg.train.clip_norm });

  let state: TrainState;
  let startStep = 0;
  const latest = o.resume ? latestCheckpoint(run.checkpointsDir) : null;
  if (latest) {
    const info = readCheckpointInfo(latest);
    if (info.modality !== cfg.modality) throw new Error(`checkpoint ${latest} is a ${info.modality} tower; this run pretrains a ${cfg.modality} tower`);
    if (info.data.hash !== dataHash) throw new Error(`checkpoint ${latest} was trained on different data (hash ${info.data.hash}, now ${dataHash}); resume with the same corpus and tokenizer`);
    state = loadCheckpoint(latest, model, true).state;
    startStep = info.step;
    log.info({ step: startStep, checkpoint: latest }, `resuming from step ${startStep}`);
    await dropMetricsAfter(run.metricsPath, startStep);
  } else {
    state = initialState(model, initParams(model.specs, cfg.seed));
  }
  await engine.load(state);
  // Logged after load: the ONNX engine knows its execution provider once its worker has started.
  const device = await recordEngine(run, log, choice, engine, o.resume, { seed: cfg.seed });

  const nParams = countParams(model.specs);
  if (startStep >= cfg.train.steps) log.info({ step: startStep }, `already finished (${startStep} of ${cfg.train.steps} steps): nothing to do`);
  else log.info({ params: nParams, rows, seq_len: cfg.data.seq_len, steps: cfg.train.steps }, `training a ${(nParams / 1e6).toFixed(2)}M-parameter ${cfg.modality} tower`);

  const devBatches: HostBatch[] = [];
  for (let i = 0; i + rows <= devWin.length && devBatches.length < cfg.train.eval_batches; i += rows) devBatches.push(lmBatch(devWin.slice(i, i + rows)));

  const signals = stopOnSignal(log);
  const progress = createProgress(cfg.train.steps, `pretrain ${cfg.modality}`, o.progress === undefined ? {} : { enabled: o.progress });
  const extraFiles = { ...corpus.files, 'config.yaml': formatConfig(cfg) };
  let result;
  try {
    result = await trainLoop({
      engine,
      cfg: cfg.train,
      startStep,
      batchAt: (i) => lmBatch(sampler.indices(i).map((j) => trainWin[j]!)),
      devBatches,
      tokensPerBatch: rows * cfg.data.seq_len,
      metricsPath: run.metricsPath,
      log,
      progress,
      stopRequested: signals.requested,
      checkpoint: async (step, st, metrics) => {
        const pos = sampler.position(step);
        await saveCheckpoint(
          run.checkpointsDir,
          st,
          model,
          { format: CHECKPOINT_FORMAT, kind: model.kind, modality: cfg.modality, step, engine: choice.engine, data: { ...pos, windows: trainWin.length, hash: dataHash }, metrics },
          extraFiles,
          cfg.train.keep_checkpoints,
        );
      },
    });
  } finally {
    signals.release();
    progress.stop();
    engine.dispose();
  }
  // A run resumed after it had finished trains nothing: report the figures its checkpoint saved.
  const saved = readCheckpointInfo(latestCheckpoint(run.checkpointsDir)!).metrics;
  const trainLoss = Number.isFinite(result.trainLoss) ? result.trainLoss : (saved.train_loss ?? NaN);
  const devLoss = Number.isFinite(result.devLoss) ? result.devLoss : (saved.dev_loss ?? NaN);
  const summary: PretrainSummary = {
    run: run.dir,
    steps: result.step,
    interrupted: result.interrupted,
    train_loss: trainLoss,
    dev_loss: devLoss,
    dev_ppl: Math.exp(devLoss),
    unigram_dev_ppl: unigram,
    params: nParams,
    engine: `${choice.engine}/${device.device}`,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(join(run.dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  log.info(summary, result.interrupted ? `interrupted at step ${result.step}; continue with --resume --name ${run.name}` : 'done');
  return summary;
}

function hashWindows(w: readonly Int32Array[]): string {
  const h = createHash('sha256');
  for (const x of w) h.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  return h.digest('hex').slice(0, 16);
}

/**
 * Dev perplexity of an add-one unigram model fitted on the training targets: the baseline a tower
 * must beat by far to show it learned more than word frequencies.
 */
export function unigramPerplexity(train: readonly Int32Array[], dev: readonly Int32Array[], vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  let total = vocab;
  for (const w of train) for (let i = 1; i < w.length; i++) (counts[w[i]!]!++, total++);
  let nll = 0;
  let n = 0;
  for (const w of dev) for (let i = 1; i < w.length; i++) (nll -= Math.log(counts[w[i]!]! / total), n++);
  return Math.exp(nll / n);
}

/** On resume, metrics logged after the checkpoint will be logged again: drop those lines. */
export async function dropMetricsAfter(path: string, step: number): Promise<void> {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => {
      try {
        return JSON.parse(l).step <= step;
      } catch {
        return false; // empty, or a line cut short by the crash being resumed from
      }
    });
  await writeFileAtomic(path, kept.map((l) => l + '\n').join(''));
}
