import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZipConfig } from '../config/fuse-schema.js';
import type { Modality, TowerShape } from '../config/schema.js';
import type { ModelDef } from '../engine/engine.js';
import type { TextCase } from '../data/aligned.js';
import type { Specials } from '../data/zip-batch.js';
import { singleDecoderModel, type SharedVocab } from '../model/single-decoder.js';
import { zipperModel } from '../model/zipper-model.js';
import type { ZipperShape } from '../model/zipper.js';
import type { TextTokenizer } from '../tokenizers/text.js';
import type { SpeechTokenizer } from '../tokenizers/speech/tokenizer.js';
import { latestCheckpoint, loadCheckpoint } from './checkpoint.js';
import { loadSpeechTokenizer, loadTextTokenizer } from './tower-run.js';

/**
 * A fine-tuned multimodal model as its checkpoints describe it: `model.json` beside the weights
 * says which architecture, its shape, the special tokens and how transcripts were cased, so
 * decoding and evaluation rebuild exactly the model that was trained.
 */
export const FUSED_MODEL_FILE = 'model.json';
export const FUSED_MODEL_FORMAT = 'zipper-fused-model/1';

export interface FusedModelJson {
  format: typeof FUSED_MODEL_FORMAT;
  architecture: 'zipper' | 'single-decoder';
  zipper?: ZipperShape;
  frozen?: Modality[];
  single?: { shape: TowerShape; vocab: SharedVocab };
  specials: Specials;
  text_case: TextCase;
  /** Where the pretrained towers came from. */
  towers: Record<Modality, { run: string; checkpoint: string; step: number }>;
}

/** The model a description stands for; `newLayerLr` is the zipper's training-only multiplier. */
export function fusedModelDef(j: FusedModelJson, newLayerLr = 1): ModelDef {
  if (j.architecture === 'zipper') return zipperModel(j.zipper!, j.frozen ?? [], newLayerLr);
  return singleDecoderModel(j.single!.shape);
}

export interface FusedRun {
  checkpoint: string;
  step: number;
  json: FusedModelJson;
  model: ModelDef;
  params: Map<string, Float32Array>;
  text: TextTokenizer;
  speech: SpeechTokenizer;
}

/**
 * A fine-tuning run's best checkpoint (by dev loss; `which: 'latest'` for the last one), or a
 * checkpoint folder given directly.
 */
export function loadFusedRun(path: string, which: 'best' | 'latest' = 'best'): FusedRun {
  let dir: string | null;
  if (existsSync(join(path, 'state.json'))) dir = path;
  else {
    if (!existsSync(path)) throw new Error(`no fine-tuning run at ${path}`);
    dir = which === 'best' ? latestCheckpoint(join(path, 'best')) : null;
    dir ??= latestCheckpoint(join(path, 'checkpoints'));
    if (!dir) throw new Error(`${path} has no checkpoint yet`);
  }
  const file = join(dir, FUSED_MODEL_FILE);
  if (!existsSync(file)) throw new Error(`${dir} has no ${FUSED_MODEL_FILE}: not a fine-tuned (zipper or single-decoder) model`);
  const json = JSON.parse(readFileSync(file, 'utf8')) as FusedModelJson;
  if (json.format !== FUSED_MODEL_FORMAT) throw new Error(`${file}: format ${JSON.stringify(json.format)}, this zipper reads ${FUSED_MODEL_FORMAT}`);
  // The layout through today's schema: a key added since the checkpoint was written takes its
  // default, which is what that checkpoint was built with (no context LayerNorm, GPT-2 init).
  if (json.zipper) {
    const { text, speech, ...layout } = json.zipper;
    json.zipper = { text, speech, ...ZipConfig.parse(layout) };
  }
  const model = fusedModelDef(json);
  const { state, info } = loadCheckpoint(dir, model, false);
  return { checkpoint: dir, step: info.step, json, model, params: state.params, text: loadTextTokenizer(dir), speech: loadSpeechTokenizer(dir) };
}
