import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { PretrainConfig, type TowerShape } from '../config/schema.js';
import { towerModel } from '../model/tower.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { loadCheckpoint, readCheckpointInfo, type CheckpointInfo } from '../train/checkpoint.js';

/** A tower as an export needs it: every weight, its shape, and what a user needs to feed it. */
export interface TowerSource {
  dir: string;
  info: CheckpointInfo;
  shape: TowerShape;
  params: Map<string, Float32Array>;
  /** tokenizer.json text (text towers). */
  tokenizer: string | null;
  specials: { pad: number; bos: number; eos: number };
}

/**
 * Loads a tower checkpoint folder the way `zipper generate` does (config.yaml, tokenizer.json,
 * model.safetensors), failing with the file's name on anything missing or incomplete: an export
 * must never be written from half a checkpoint.
 */
export function loadTowerSource(dir: string): TowerSource {
  const info = readCheckpointInfo(dir);
  if (info.kind !== 'tower') throw new Error(`checkpoint ${dir} holds a ${info.kind}; this version exports towers only`);
  if (info.modality !== 'text') throw new Error(`checkpoint ${dir} holds a ${info.modality} tower; this version exports text towers only`);
  const cfgFile = join(dir, 'config.yaml');
  if (!existsSync(cfgFile)) throw new Error(`checkpoint ${dir} has no config.yaml (the tower's shape)`);
  const cfg = loadConfig(PretrainConfig, { file: cfgFile });
  const tokFile = join(dir, 'tokenizer.json');
  if (!existsSync(tokFile)) throw new Error(`checkpoint ${dir} has no tokenizer.json (a text tower's vocabulary)`);
  const tokenizer = readFileSync(tokFile, 'utf8');
  const tok = TextTokenizer.fromJSON(tokenizer, tokFile);
  const shape: TowerShape = { ...cfg.model, vocab_size: tok.vocabSize };
  const { state } = loadCheckpoint(dir, towerModel(shape), false);
  return { dir, info, shape, params: state.params, tokenizer, specials: { pad: tok.pad, bos: tok.bos, eos: tok.eos } };
}
