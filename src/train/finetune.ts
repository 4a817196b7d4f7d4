import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FuseConfig } from '../config/fuse-schema.js';
import type { Modality } from '../config/schema.js';
import { formatConfig } from '../config/load.js';
import { hashOf, sha256Hex } from '../config/hash.js';
import { alignedSubset, hoursOf, loadAligned } from '../data/aligned.js';
import { singleBatch } from '../data/single-batch.js';
import { loadTextCorpus, splitTrainDev } from '../data/text.js';
import { zipBatch, type Segment, type Specials, type Task } from '../data/zip-batch.js';
import { initialState, type HostBatch, type ModelDef, type TrainState } from '../engine/engine.js';
import { chooseEngine, createTrainEngine } from '../engine/select.js';
import { countParams, initParams } from '../model/params.js';
import { singleDecoderInit, singleDecoderShape, type SharedVocab } from '../model/single-decoder.js';
import { frozenTowers } from '../model/zipper-model.js';
import { MODALITIES, type ZipperShape } from '../model/zipper.js';
import { createLogger } from '../run/log.js';
import { createProgress } from '../run/progress.js';
import { assertSameConfig, createRunDir, saveResolvedConfig } from '../run/rundir.js';
import { readTokenSplit, TOKENS_FILE, type TokensRecord } from '../tokenizers/speech/tokenize.js';
import { writeFileAtomic } from '../util/fs.js';
import { CHECKPOINT_FORMAT, type CheckpointInfo, latestCheckpoint, loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './checkpoint.js';
import { exampleLength, MixSampler, toSegments, type ExamplePools, type ExampleRef } from './finetune-data.js';
import { devBatches, gateValues, meanLoss } from './finetune-eval.js';
import { FUSED_MODEL_FILE, FUSED_MODEL_FORMAT, fusedModelDef, type FusedModelJson } from './fused.js';
import { trainLoop } from './loop.js';
import { recordEngine, stopOnSignal } from './stage.js';
import { dropMetricsAfter } from './pretrain.js';
import { loadSpeechTokenizer, loadTowerRun, loadTextTokenizer, type TowerRun } from './tower-run.js';

export interface FinetuneOptions {
  cfg: FuseConfig;
  runsDir: string;
  name?: string;
  resume: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export interface FinetuneSummary {
  run: string;
  architecture: string;
  freeze: string;
  fraction: number;
  aligned_utterances: number;
  aligned_hours: number;
  steps: number;
  interrupted: boolean;
  stopped_early: boolean;
  train_loss: number;
  dev_loss: number;
  best_step: number;
  best_dev_loss: number;
  /** The dev figure the best checkpoint was chosen by (train.select_on). */
  selected_on: string;
  metrics: Record<string, number>;
  params: number;
  trainable_params: number;
  engine: string;
  seconds: number;
}

/** Keys a resumed run may change: training longer is the same experiment. */
const RESUMABLE_CHANGES = ['train.steps', 'train.patience', 'train.select_on', 'engine', 'backend', 'ort'];

const roundUp = (n: number, to: number, cap: number) => Math.min(cap, Math.ceil(n / to) * to);

/**
 * The fine-tuning stage (`zipper fuse`): load and check the two towers, build the zipper (or the
 * single decoder), select the aligned fraction, and train on the ASR/TTS mix with dev loss,
 * conditioning gap and gate values tracked, the best checkpoint kept and optional early stopping.
 * Every check on the inputs runs before any training.
 */
export async function finetune(o: FinetuneOptions): Promise<FinetuneSummary> {
  const cfg = o.cfg;
  const t0 = performance.now();

  // --- inputs, all checked before a run folder is touched ---
  const towers = { text: loadTowerRun(cfg.text_tower, 'text'), speech: loadTowerRun(cfg.speech_tower, 'speech') };
  const tokensDir = cfg.data.tokens ?? join(cfg.data.corpus, 'tokens');
  checkSpeechTokenizer(towers.speech, tokensDir);
  const textTok = loadTextTokenizer(towers.text.checkpoint);
  const speechTok = loadSpeechTokenizer(towers.speech.checkpoint);
  const sp: Specials = { text: { bos: textTok.bos, eos: textTok.eos }, speech: { bos: speechTok.bos, eos: speechTok.eos } };
  const single = cfg.architecture === 'single-decoder';
  const vocab: SharedVocab = { text: towers.text.shape.vocab_size, speech: towers.speech.shape.vocab_size };
  const sdShape = singleDecoderShape(towers.text.shape, towers.speech.shape);
  // Both architectures see the same utterances: those that fit the towers (the single decoder's
  // max_len is the towers' together, so every one of them fits it too).
  const maxLen = { text: towers.text.shape.max_len, speech: towers.speech.shape.max_len };
  const load = (split: string) => loadAligned({ corpus: cfg.data.corpus, tokens: tokensDir, split, textTokenizer: textTok, textCase: cfg.data.text_case, maxText: maxLen.text, maxSpeech: maxLen.speech });
  const trainAll = await load(cfg.data.train_split);
  const train = alignedSubset(trainAll.utterances, cfg.data.fraction, cfg.seed);
  const devAll = await load(cfg.data.dev_split);
  const dev = alignedSubset(devAll.utterances, Math.min(1, cfg.data.dev_utterances / devAll.utterances.length), cfg.seed);
  const pools: ExamplePools = { aligned: train, ...(single && cfg.single_decoder.unimodal_ratio > 0 ? await unimodalPools(cfg, towers.text, tokensDir, maxLen) : { text: [], speech: [] }) };
  const weights = { asr: cfg.data.tasks.asr, tts: cfg.data.tasks.tts, unimodal: single ? cfg.single_decoder.unimodal_ratio : 0 };
  const sampler = new MixSampler(pools, weights, cfg.train.batch_size, cfg.seed);
  const tasks = (['asr', 'tts'] as Task[]).filter((t) => cfg.data.tasks[t] > 0);
  const withTargets: Modality[] = single ? [] : MODALITIES.filter((m) => (m === 'text' ? tasks.includes('asr') : tasks.includes('tts')));

  // --- the model ---
  const zshape: ZipperShape = { ...cfg.zip, text: towers.text.shape, speech: towers.speech.shape };
  const frozen = single ? [] : frozenTowers(cfg.freeze);
  const json: FusedModelJson = {
    format: FUSED_MODEL_FORMAT,
    architecture: cfg.architecture,
    ...(single ? { single: { shape: sdShape, vocab } } : { zipper: zshape, frozen }),
    specials: sp,
    text_case: cfg.data.text_case,
    towers: {
      text: { run: resolve(cfg.text_tower), checkpoint: resolve(towers.text.checkpoint), step: towers.text.step },
      speech: { run: resolve(cfg.speech_tower), checkpoint: resolve(towers.speech.checkpoint), step: towers.speech.step },
    },
  };
  const model = fusedModelDef(json, cfg.train.new_layer_lr_mult);
  const makeBatch = (examples: Segment[][]): HostBatch => {
    if (single) {
      const S = roundUp(Math.max(...examples.map((e) => e.reduce((n, s) => n + s.tokens.length, 0))), 32, sdShape.max_len);
      return singleBatch(examples, S, vocab, cfg.single_decoder.loss);
    }
    const lens = {
      text: roundUp(Math.max(...examples.map((e) => e.filter((s) => s.modality === 'text').reduce((n, s) => n + s.tokens.length, 0))), 16, maxLen.text),
      speech: roundUp(Math.max(...examples.map((e) => e.filter((s) => s.modality === 'speech').reduce((n, s) => n + s.tokens.length, 0))), 32, maxLen.speech),
    };
    return zipBatch(examples, lens, withTargets);
  };
  const batchOf = (refs: readonly ExampleRef[]) => makeBatch(refs.map((r) => toSegments(r, pools, sp)));
  const tokensIn = (refs: readonly ExampleRef[]) => refs.reduce((n, r) => n + exampleLength(r, pools), 0);
  const dataHash = hashOf({ train: train.map((u) => u.id), tasks: cfg.data.tasks, unimodal: weights.unimodal, pools: [pools.text.length, pools.speech.length], text_case: cfg.data.text_case, towers: json.towers });

  // --- the run folder ---
  const run = createRunDir(o.runsDir, o.name, { resume: o.resume, prefix: cfg.architecture });
  if (o.resume && existsSync(run.configPath)) assertSameConfig(run, cfg, RESUMABLE_CHANGES, FuseConfig);
  else await saveResolvedConfig(run, cfg);
  const log = createLogger({ jsonlPath: run.logPath, quiet: o.quiet ?? false });
  const dataInfo = {
    train_utterances: train.length,
    train_hours: +hoursOf(train).toFixed(3),
    pool_utterances: trainAll.utterances.length,
    pool_hours: +hoursOf(trainAll.utterances).toFixed(3),
    too_long_dropped: trainAll.tooLong,
    dev_utterances: dev.length,
    unimodal_text: pools.text.length,
    unimodal_speech: pools.speech.length,
    batches_per_epoch: sampler.perEpoch,
  };
  log.info(dataInfo, `aligned data: ${train.length} of ${trainAll.utterances.length} utterances (${(cfg.data.fraction * 100).toPrecision(3)}%, ${dataInfo.train_hours} h)`);

  const choice = await chooseEngine(cfg.engine, cfg.backend, cfg.ort);
  const engine = createTrainEngine(choice, model, { betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: cfg.train.weight_decay, clipNorm: cfg.train.clip_norm });
  const bestDir = join(run.dir, 'best');
  let state: TrainState;
  let startStep = 0;
  let best = { step: 0, dev: Infinity, since: 0 };
  const latest = o.resume ? latestCheckpoint(run.checkpointsDir) : null;
  if (latest) {
    const info = readCheckpointInfo(latest);
    if (info.data.hash !== dataHash) throw new Error(`checkpoint ${latest} was trained on different data (hash ${info.data.hash}, now ${dataHash}); resume with the same towers, corpus and fraction`);
    state = loadCheckpoint(latest, model, true).state;
    startStep = info.step;
    const b = latestCheckpoint(bestDir);
    if (b) best = { step: readCheckpointInfo(b).step, dev: readCheckpointInfo(b).metrics[cfg.train.select_on] ?? Infinity, since: info.metrics.evals_since_best ?? 0 };
    log.info({ step: startStep, checkpoint: latest }, `resuming from step ${startStep}`);
    await dropMetricsAfter(run.metricsPath, startStep);
  } else {
    state = initialState(model, initialWeights(cfg, model, towers, sdShape));
  }
  await engine.load(state);
  const device = await recordEngine(run, log, choice, engine, o.resume, { seed: cfg.seed, data: dataInfo });
  const nParams = countParams(model.specs);
  const nTrainable = countParams(model.specs.filter((s) => model.trainable(s.name)));
  log.info({ params: nParams, trainable: nTrainable, frozen }, `${cfg.architecture}: ${(nParams / 1e6).toFixed(2)}M parameters, ${(nTrainable / 1e6).toFixed(2)}M trainable`);

  // --- evaluation: dev loss per task, conditioning gap, gates ---
  const devSets = tasks.map((task) => ({ task, ...devBatches(dev, task, cfg.train.batch_size, sp, makeBatch) }));
  const evaluate = async (step: number) => {
    const metrics: Record<string, number> = {};
    let sum = 0;
    let n = 0;
    for (const d of devSets) {
      const matched = await meanLoss(engine, d.matched);
      const mismatched = await meanLoss(engine, d.mismatched);
      metrics[`dev_${d.task}_loss`] = matched.loss;
      metrics[`gap_${d.task}`] = mismatched.loss - matched.loss;
      sum += matched.loss * matched.tokens;
      n += matched.tokens;
    }
    metrics.dev_loss = sum / n;
    if (!single) Object.assign(metrics, gateValues((await engine.state()).params, zshape));
    let stop = false;
    const score = metrics[cfg.train.select_on];
    if (score === undefined) throw new Error(`train.select_on: ${cfg.train.select_on} is not measured`);
    if (score < best.dev) {
      best = { step, dev: score, since: 0 };
      await saveCheckpoint(bestDir, await engine.state(), model, checkpointInfo(step, { ...metrics, best_score: best.dev }), extraFiles, 1);
    } else {
      best.since++;
      stop = cfg.train.patience > 0 && best.since >= cfg.train.patience;
    }
    metrics.best_score = best.dev;
    metrics.evals_since_best = best.since;
    return { metrics, stop };
  };
  const extraFiles = {
    [towers.text.tokenizerFile]: towers.text.tokenizerJson,
    [towers.speech.tokenizerFile]: towers.speech.tokenizerJson,
    [FUSED_MODEL_FILE]: JSON.stringify(json, null, 2) + '\n',
    'config.yaml': formatConfig(cfg),
  };
  const checkpointInfo = (step: number, metrics: Record<string, number>): CheckpointInfo => ({
    format: CHECKPOINT_FORMAT,
    kind: model.kind,
    modality: 'speech+text',
    step,
    engine: choice.engine,
    data: { ...sampler.position(step), windows: sampler.perEpoch, hash: dataHash },
    metrics,
  });

  const signals = stopOnSignal(log);
  const progress = createProgress(cfg.train.steps, `fuse ${cfg.architecture}`, o.progress === undefined ? {} : { enabled: o.progress });
  let result;
  try {
    result = await trainLoop({
      engine,
      cfg: cfg.train,
      startStep,
      batchAt: (i) => batchOf(sampler.at(i)),
      devBatches: [],
      evaluate,
      tokensPerBatch: (i) => tokensIn(sampler.at(i)),
      metricsPath: run.metricsPath,
      log,
      progress,
      stopRequested: signals.requested,
      checkpoint: async (step, st, metrics) => {
        await saveCheckpoint(run.checkpointsDir, st, model, checkpointInfo(step, { ...metrics, evals_since_best: best.since }), extraFiles, cfg.train.keep_checkpoints);
      },
    });
  } finally {
    signals.release();
    progress.stop();
    engine.dispose();
  }
  const last = readCheckpointInfo(latestCheckpoint(run.checkpointsDir)!).metrics;
  const bestCk = latestCheckpoint(bestDir);
  const bestInfo = bestCk ? readCheckpointInfo(bestCk) : null;
  const summary: FinetuneSummary = {
    run: run.dir,
    architecture: cfg.architecture,
    freeze: single ? 'none' : cfg.freeze,
    fraction: cfg.data.fraction,
    aligned_utterances: train.length,
    aligned_hours: dataInfo.train_hours,
    steps: result.step,
    interrupted: result.interrupted,
    stopped_early: Boolean(result.stoppedEarly),
    train_loss: Number.isFinite(result.trainLoss) ? result.trainLoss : (last.train_loss ?? NaN),
    dev_loss: Number.isFinite(result.devLoss) ? result.devLoss : (last.dev_loss ?? NaN),
    best_step: bestInfo?.step ?? 0,
    best_dev_loss: bestInfo?.metrics.dev_loss ?? NaN,
    selected_on: cfg.train.select_on,
    metrics: bestInfo?.metrics ?? {},
    params: nParams,
    trainable_params: nTrainable,
    engine: `${choice.engine}/${device.device}`,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(join(run.dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  log.info(summary, result.interrupted ? `interrupted at step ${result.step}; continue with --resume --name ${run.name}` : 'done');
  return summary;
}

/** The speech tower must read the units the token folder holds: the same tokenizer, byte for byte. */
function checkSpeechTokenizer(t: TowerRun, tokensDir: string): void {
  const recFile = join(tokensDir, TOKENS_FILE);
  if (!existsSync(recFile)) throw new Error(`data.tokens ${tokensDir}: no ${TOKENS_FILE} (run zipper tokenize, or point data.tokens at a token folder)`);
  const rec = JSON.parse(readFileSync(recFile, 'utf8')) as TokensRecord;
  if (rec.tokenizer?.sha256 && rec.tokenizer.sha256 !== sha256Hex(t.tokenizerJson))
    throw new Error(`the speech tower ${t.checkpoint} was trained on units of another tokenizer than ${tokensDir} holds (speech-tokenizer.json differs): use a speech tower pretrained on this token folder`);
}

/** Fresh new layers from the seed, the towers' pretrained weights copied in. */
function initialWeights(cfg: FuseConfig, model: ModelDef, towers: Record<Modality, TowerRun>, sdShape: ReturnType<typeof singleDecoderShape>): Map<string, Float32Array> {
  if (cfg.architecture === 'single-decoder') return singleDecoderInit(sdShape, cfg.single_decoder.init === 'pretrained' ? towers.text.params : null, cfg.seed);
  const p = initParams(model.specs, cfg.seed);
  for (const m of MODALITIES) for (const [name, v] of towers[m].params) p.set(`${m}.${name}`, v.slice());
  return p;
}

/** The single decoder's unimodal pools: the text tower's own training sentences, the unlabelled speech. */
async function unimodalPools(cfg: FuseConfig, text: TowerRun, tokensDir: string, maxLen: Record<Modality, number>): Promise<{ text: number[][]; speech: number[][] }> {
  const tc = text.config;
  const sentences = splitTrainDev(loadTextCorpus(tc.data.source), tc.data.dev_fraction, tc.seed).train;
  const tok = loadTextTokenizer(text.checkpoint);
  const ids = (await tok.encodeBatch(sentences)).filter((s) => s.length + 2 <= maxLen.text);
  const speech = readTokenSplit(tokensDir, cfg.data.unlabelled_split)
    .map((u) => u.units)
    .filter((s) => s.length + 2 <= maxLen.speech);
  return { text: ids, speech };
}
