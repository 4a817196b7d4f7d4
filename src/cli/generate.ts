import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PretrainConfig } from '../config/schema.js';
import { generate } from '../decode/sample.js';
import { chooseEngine, createTowerDecoder, describeEngine } from '../engine/select.js';
import { towerModel } from '../model/tower.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { latestCheckpoint, loadCheckpoint, readCheckpointInfo } from '../train/checkpoint.js';

export function addGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample from a trained tower')
    .requiredOption('-r, --run <dir>', 'a run folder (its latest checkpoint) or a checkpoint folder')
    .option('-p, --prompt <text>', 'text to continue', '')
    .option('--num <n>', 'samples to draw', (v) => parseInt(v, 10), 3)
    .option('--max-new <n>', 'new tokens per sample at most', (v) => parseInt(v, 10), 48)
    .option('-t, --temperature <t>', '0 for greedy', parseFloat, 0.8)
    .option('-k, --top-k <k>', 'sample among the k most likely tokens (0: all)', (v) => parseInt(v, 10), 40)
    .option('--seed <n>', 'sampling seed', (v) => parseInt(v, 10), 0)
    .option('--engine <engine>', 'auto | tfjs | ort', 'auto')
    .option('--backend <backend>', 'auto | tensorflow | webgpu | wasm | cpu', 'auto')
    .action(async (o) => {
      const dir = resolveCheckpoint(o.run);
      const info = readCheckpointInfo(dir);
      if (info.modality !== 'text') throw new Error(`${dir} holds a ${info.modality} tower; --prompt generation needs a text tower`);
      const cfg = loadConfig(PretrainConfig, { file: join(dir, 'config.yaml') });
      const tokPath = join(dir, 'tokenizer.json');
      const tok = TextTokenizer.fromJSON(readFileSync(tokPath, 'utf8'), tokPath);
      const shape = { ...cfg.model, vocab_size: tok.vocabSize };
      const choice = await chooseEngine(o.engine, o.backend, cfg.ort);
      console.error(`${describeEngine(choice)}; checkpoint ${dir} (step ${info.step})`);
      const model = towerModel(shape);
      const { state } = loadCheckpoint(dir, model, false);
      const prompt = [tok.bos, ...(await tok.encode(o.prompt))];
      const dec = createTowerDecoder(choice, state.params, shape, model.specs);
      const rows = Array.from({ length: o.num }, () => prompt);
      const out = await generate(dec, rows, { maxNewTokens: o.maxNew, temperature: o.temperature, topK: o.topK, stopToken: tok.eos, seed: o.seed });
      dec.dispose();
      // Decode prompt and continuation together: byte-level BPE spaces belong to the following token.
      for (const ids of out) process.stdout.write(`${await tok.decode([...prompt, ...ids])}\n`);
    });
}

/** A run folder means its latest checkpoint; a checkpoint folder means itself. */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`no run or checkpoint folder at ${path}`);
  if (existsSync(join(path, 'state.json'))) return path;
  const latest = latestCheckpoint(join(path, 'checkpoints'));
  if (!latest) throw new Error(`run ${path} has no checkpoint yet (checkpoints/latest.json is missing)`);
  return latest;
}
