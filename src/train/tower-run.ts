import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Modality, TowerShape } from '../config/schema.js';
import { PretrainConfig } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import { towerModel } from '../model/tower.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { SpeechTokenizer } from '../tokenizers/speech/tokenizer.js';
import { TOKENIZER_FILE } from '../tokenizers/speech/tokenize.js';
import { latestCheckpoint, loadCheckpoint, readCheckpointInfo } from './checkpoint.js';

/** A run folder means its latest checkpoint; a checkpoint folder means itself. */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`no run or checkpoint folder at ${path}`);
  if (existsSync(join(path, 'state.json'))) return path;
  const latest = latestCheckpoint(join(path, 'checkpoints'));
  if (!latest) throw new Error(`run ${path} has no checkpoint yet (checkpoints/latest.json is missing)`);
  return latest;
}

/** The tokenizer file a tower of each modality keeps beside its weights. */
export const TOWER_TOKENIZER_FILE: Record<Modality, string> = { text: 'tokenizer.json', speech: TOKENIZER_FILE };

function readIn(dir: string, name: string): string {
  const file = join(dir, name);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${dir}: cannot read ${name} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function loadTextTokenizer(dir: string): TextTokenizer {
  return TextTokenizer.fromJSON(readIn(dir, TOWER_TOKENIZER_FILE.text), join(dir, TOWER_TOKENIZER_FILE.text));
}

export function loadSpeechTokenizer(dir: string): SpeechTokenizer {
  return SpeechTokenizer.fromJSON(readIn(dir, TOWER_TOKENIZER_FILE.speech), join(dir, TOWER_TOKENIZER_FILE.speech));
}

/** A pretrained tower: where it came from, its shape, weights and tokenizer. */
export interface TowerRun {
  checkpoint: string;
  step: number;
  shape: TowerShape;
  params: Map<string, Float32Array>;
  /** The tokenizer file's name and text (copied into every checkpoint that uses the tower). */
  tokenizerFile: string;
  tokenizerJson: string;
  config: PretrainConfig;
}

/**
 * Loads a pretraining run's latest checkpoint as a tower of `modality`. Fails, naming the folder,
 * when it is not a tower, is a tower of the other modality, or its tokenizer and its embedding
 * table disagree on the vocabulary.
 */
export function loadTowerRun(path: string, modality: Modality): TowerRun {
  const flag = `--${modality}`;
  if (!existsSync(path)) throw new Error(`${flag} ${path}: no such run folder`);
  const dir = resolveCheckpoint(path);
  const info = readCheckpointInfo(dir);
  if (info.kind !== 'tower') throw new Error(`${flag} ${path}: holds a ${info.kind}, not a pretrained tower`);
  if (info.modality !== modality) throw new Error(`${flag} ${path}: is a ${info.modality} tower; ${flag} needs a ${modality} tower`);
  const config = loadConfig(PretrainConfig, { file: join(dir, 'config.yaml') });
  const tokenizerJson = readIn(dir, TOWER_TOKENIZER_FILE[modality]);
  const vocab = modality === 'text' ? loadTextTokenizer(dir).vocabSize : loadSpeechTokenizer(dir).vocabSize;
  const shape: TowerShape = { ...config.model, vocab_size: vocab };
  let params: Map<string, Float32Array>;
  try {
    params = loadCheckpoint(dir, towerModel(shape), false).state.params;
  } catch (e) {
    const msg = (e as Error).message;
    if (/wte\.weight/.test(msg)) throw new Error(`${flag} ${path}: its tokenizer (${vocab} tokens) does not match its tower's embedding table: ${msg}`);
    throw new Error(`${flag} ${path}: ${msg}`);
  }
  return { checkpoint: dir, step: info.step, shape, params, tokenizerFile: TOWER_TOKENIZER_FILE[modality], tokenizerJson, config };
}
