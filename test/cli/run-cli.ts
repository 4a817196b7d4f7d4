import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brownSentences } from '../../src/data/text.js';
import { findProjectRoot } from '../../src/run/env.js';

export const ZIPPER = join(findProjectRoot()!, 'bin', 'zipper');

/** A scratch folder with a small plain-text corpus (Brown's first n sentences). */
export function scratch(n = 1500): { dir: string; corpus: string } {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-test-'));
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, brownSentences().slice(0, n).join('\n') + '\n');
  return { dir, corpus };
}

/**
 * A tiny, fast pretraining command. The engine is auto (the ONNX engine here) unless `engine` names
 * one; tfjs runs on wasm, which is deterministic and ten times faster than cpu at this size.
 */
export function tinyPretrain(corpus: string, steps: number, extra: string[] = [], engine: 'auto' | 'ort' | 'tfjs' = 'auto'): string[] {
  const sets = [
    `data.source=${corpus}`,
    'data.seq_len=32',
    'data.dev_fraction=0.05',
    'tokenizer.vocab_size=300',
    'model={d_model: 32, n_layers: 2, n_heads: 2, ff_mult: 2, max_len: 32}',
    'train.batch_tokens=256',
    `train.steps=${steps}`,
    'train.warmup_steps=5',
    'train.eval_every=10',
    'train.eval_batches=2',
    'train.log_every=5',
    ...extra,
  ];
  const pick = engine === 'tfjs' ? ['--engine', 'tfjs', '--backend', 'wasm'] : engine === 'ort' ? ['--engine', 'ort'] : [];
  return ['pretrain', '--modality', 'text', ...pick, '--no-progress', ...sets.flatMap((s) => ['--set', s])];
}

export function runZipper(args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [ZIPPER, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function startZipper(args: string[], cwd: string): ChildProcess {
  return spawn(process.execPath, [ZIPPER, ...args], { cwd, stdio: 'ignore', env: { ...process.env, CI: '1' } });
}
