import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PretrainConfig } from '../config/schema.js';
import { TextTokenizer } from '../tokenizers/text.js';
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
