import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/cli/common.js';
import { brownSentences } from '../../src/data/text.js';

/**
 * A study on the tiny corpus with tiny towers (a stage takes seconds): the shared stages, a judge,
 * the fine-tuning config every cell starts from, ASR and TTS evaluation, and one table whose cells
 * (YAML lines under `cells:`) the caller gives. Writes brown.txt into `dir` for the text tower.
 */
const cfg = (name: string) => join(projectRoot(), 'configs', name);
export const TINY_FUSE = ['data.dev_utterances=16', 'train.batch_size=4', 'train.steps=12', 'train.warmup_steps=2', 'train.eval_every=6', 'train.checkpoint_every=6', 'train.log_every=3', 'zip.layers=1', 'zip.gate_init=0.3'];
const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

export function writeBrown(dir: string): void {
  writeFileSync(join(dir, 'brown.txt'), brownSentences().slice(0, 3000).join('\n') + '\n');
}

export function tinyStudy(dir: string, cells: string, o: { name?: string; cache?: string; fuse?: string[]; extra?: string } = {}): string {
  return `name: ${o.name ?? 'tiny'}
cache: ${o.cache ?? 'cache'}
workers: 2
corpus: { config: ${cfg('data-tiny.yaml')} }
tokens: { config: ${cfg('tokenize-tiny.yaml')} }
text_tower:
  config: ${cfg('pretrain-text.yaml')}
  set: ${list(['data.source=' + join(dir, 'brown.txt'), 'data.seq_len=32', 'data.dev_fraction=0.2', 'tokenizer.vocab_size=300', 'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 64}', 'train.batch_tokens=256', 'train.steps=20', 'train.warmup_steps=5', 'train.eval_every=10', 'train.eval_batches=2', 'train.log_every=5'])}
speech_tower:
  config: ${cfg('pretrain-speech.yaml')}
  set: ${list(['data.seq_len=32', 'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 192}', 'train.batch_tokens=256', 'train.steps=20', 'train.eval_every=20', 'train.eval_batches=1'])}
judge: { config: ${cfg('judge.yaml')}, set: ${list(TINY_FUSE)} }
fuse: { config: ${cfg('fuse.yaml')}, set: ${list(o.fuse ?? TINY_FUSE)} }
eval:
  asr: { splits: [test-clean], limit: 6, batch: 8 }
  tts: { split: test-clean, limit: 4 }
${o.extra ?? ''}
tables:
  - name: t
    title: tiny table
    baseline: sd
    cells:
${cells}
`;
}

/** A study file in a fresh folder, built on the repository's own stage configs. */
export function studyFile(tables: string, extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-study-'));
  const c = (f: string) => join(projectRoot(), 'configs', f);
  const yaml = `name: s1
corpus: { config: ${c('data-tiny.yaml')} }
tokens: { config: ${c('tokenize-tiny.yaml')} }
text_tower: { config: ${c('pretrain-text.yaml')}, set: [train.steps=5] }
speech_tower: { config: ${c('pretrain-speech.yaml')} }
fuse: { config: ${c('fuse.yaml')}, set: [train.steps=7] }
eval:
  asr: { splits: [test-clean], limit: 4 }
${extra}
tables:
${tables}`;
  const f = join(dir, 's1.yaml');
  writeFileSync(f, yaml);
  return f;
}

