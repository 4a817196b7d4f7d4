import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PretrainConfig } from '../config/schema.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { SpeechTokenizer } from '../tokenizers/speech/tokenizer.js';
import { TOKENIZER_FILE, readTokenSplit } from '../tokenizers/speech/tokenize.js';
import { writeFileAtomic } from '../util/fs.js';
import { loadTextCorpus, splitTrainDev } from './text.js';

/**
 * What a tower pretrains on, whatever its modality: token sequences (sentences or utterances,
 * without specials) and the tokenizer they need. The pretraining stage packs them the same way for
 * every modality (src/data/lm.ts).
 */
export interface TowerCorpus {
  vocabSize: number;
  bos: number;
  eos: number;
  train: number[][];
  dev: number[][];
  /** Saved beside the weights in every checkpoint, by file name: the tokenizer. */
  files: Record<string, string>;
  /** Counts for the run's log. */
  info: Record<string, unknown>;
}

/**
 * Brown (or the user's text) split into train/dev, tokenized by a BPE trained on the train split.
 * A resumed run reuses the tokenizer saved in its folder, so token ids cannot drift.
 */
export async function textCorpus(cfg: PretrainConfig, runDir: string): Promise<TowerCorpus> {
  const sentences = loadTextCorpus(cfg.data.source);
  const split = splitTrainDev(sentences, cfg.data.dev_fraction, cfg.seed);
  const tokPath = join(runDir, 'tokenizer.json');
  let tok: TextTokenizer;
  if (existsSync(tokPath)) tok = TextTokenizer.fromJSON(readFileSync(tokPath, 'utf8'), tokPath);
  else {
    tok = await TextTokenizer.train(split.train, cfg.tokenizer.vocab_size);
    await writeFileAtomic(tokPath, tok.toJSON());
  }
  return {
    vocabSize: tok.vocabSize,
    bos: tok.bos,
    eos: tok.eos,
    train: await tok.encodeBatch(split.train),
    dev: await tok.encodeBatch(split.dev),
    files: { 'tokenizer.json': tok.toJSON() },
    info: { sentences: sentences.length, train_sentences: split.train.length, dev_sentences: split.dev.length },
  };
}

/**
 * Speech units from a token folder written by `zipper tokenize` (data.source): the unlabelled
 * pool's utterances to train on (their transcripts are never read) and a dev split to watch.
 */
export function speechCorpus(cfg: PretrainConfig): TowerCorpus {
  const dir = cfg.data.source;
  if (!existsSync(dir)) throw new Error(`speech token folder ${dir} does not exist: run zipper data synth, then zipper tokenize (or set data.source)`);
  const tokPath = join(dir, TOKENIZER_FILE);
  const json = readFileSync(tokPath, 'utf8');
  const tok = SpeechTokenizer.fromJSON(json, tokPath);
  const units = (split: string) => readTokenSplit(dir, split).map((u) => u.units);
  const train = units(cfg.data.train_split);
  const dev = units(cfg.data.dev_split);
  if (!train.length) throw new Error(`${dir}: split ${cfg.data.train_split} has no utterances`);
  if (!dev.length) throw new Error(`${dir}: split ${cfg.data.dev_split} has no utterances`);
  return {
    vocabSize: tok.vocabSize,
    bos: tok.bos,
    eos: tok.eos,
    train,
    dev,
    files: { [TOKENIZER_FILE]: json },
    info: { train_utterances: train.length, dev_utterances: dev.length, codebook: tok.k },
  };
}
