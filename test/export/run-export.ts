import { join } from 'node:path';
import { latestCheckpoint } from '../../src/train/checkpoint.js';
import { runZipper, scratch, tinyPretrain } from '../cli/run-cli.js';

/** `zipper export ...` as a user runs it. */
export function runExport(args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  return runZipper(['export', ...args], cwd);
}

/** A tiny trained text tower (12 steps, about 2 s): runs/t under a scratch folder. */
export function tinyRun(): { dir: string; run: string; checkpoint: string } {
  const { dir, corpus } = scratch(800);
  const r = runZipper([...tinyPretrain(corpus, 12), '--name', 't'], dir);
  if (r.code !== 0) throw new Error(`tiny pretraining failed: ${r.stderr}`);
  const run = join(dir, 'runs', 't');
  return { dir, run, checkpoint: latestCheckpoint(join(run, 'checkpoints'))! };
}
