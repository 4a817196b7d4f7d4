import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PretrainConfig } from '../config/schema.js';
import { generate } from '../decode/sample.js';
import { chooseEngine, createTowerDecoder, describeEngine } from '../engine/select.js';
import { towerModel } from '../model/tower.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { SpeechTokenizer } from '../tokenizers/speech/tokenizer.js';
import { TOKENIZER_FILE } from '../tokenizers/speech/tokenize.js';
import { unitsToWav } from '../tokenizers/speech/invert.js';
import { writeWav } from '../data/audio.js';
import { writeFileAtomic } from '../util/fs.js';
import { latestCheckpoint, loadCheckpoint, readCheckpointInfo } from '../train/checkpoint.js';

export function addGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample from a trained tower: text, or speech written as WAV')
    .requiredOption('-r, --run <dir>', 'a run folder (its latest checkpoint) or a checkpoint folder')
    .option('-p, --prompt <text>', 'text to continue', '')
    .option('--num <n>', 'samples to draw', (v) => parseInt(v, 10), 3)
    .option('--max-new <n>', 'new tokens per sample at most', (v) => parseInt(v, 10), 48)
    .option('-t, --temperature <t>', '0 for greedy', parseFloat, 0.8)
    .option('-k, --top-k <k>', 'sample among the k most likely tokens (0: all)', (v) => parseInt(v, 10), 40)
    .option('--seed <n>', 'sampling seed', (v) => parseInt(v, 10), 0)
    .option('--engine <engine>', 'auto | tfjs | ort', 'auto')
    .option('--backend <backend>', 'auto | tensorflow | webgpu | wasm | cpu', 'auto')
    .option('-o, --out <dir>', 'speech towers: where the samples go as WAV + units JSON (default: <run>/samples)')
    .action(async (o) => {
      const dir = resolveCheckpoint(o.run);
      const info = readCheckpointInfo(dir);
      const cfg = loadConfig(PretrainConfig, { file: join(dir, 'config.yaml') });
      if (info.modality === 'speech' && o.prompt) throw new Error('--prompt is text; a speech tower generates from <boa> (begin of audio)');
      const tok = info.modality === 'text' ? loadText(dir) : loadSpeech(dir);
      const shape = { ...cfg.model, vocab_size: tok.vocabSize };
      const choice = await chooseEngine(o.engine, o.backend, cfg.ort);
      console.error(`${describeEngine(choice)}; ${info.modality} tower ${dir} (step ${info.step})`);
      const model = towerModel(shape);
      const { state } = loadCheckpoint(dir, model, false);
      const prompt = tok instanceof TextTokenizer ? [tok.bos, ...(await tok.encode(o.prompt))] : [tok.bos];
      const dec = createTowerDecoder(choice, state.params, shape, model.specs);
      const rows = Array.from({ length: o.num }, () => prompt);
      const out = await generate(dec, rows, { maxNewTokens: o.maxNew, temperature: o.temperature, topK: o.topK, stopToken: tok.eos, seed: o.seed });
      dec.dispose();
      if (tok instanceof TextTokenizer) {
        // Decode prompt and continuation together: byte-level BPE spaces belong to the following token.
        for (const ids of out) process.stdout.write(`${await tok.decode([...prompt, ...ids])}\n`);
        return;
      }
      // Speech: units -> audio a person can listen to (codebook mels, Griffin-Lim).
      const outDir = o.out ?? join(dirname(dirname(dir)), 'samples');
      mkdirSync(outDir, { recursive: true });
      for (const [i, ids] of out.entries()) {
        const base = join(outDir, `sample-${o.seed}-${i}`);
        await writeFileAtomic(`${base}.units.json`, JSON.stringify(ids) + '\n');
        writeWav(`${base}.wav`, unitsToWav(tok, ids), tok.config.mel.sample_rate);
        process.stdout.write(`${base}.wav  ${ids.length} units (${((ids.length * tok.config.mel.hop_ms * tok.config.stack) / 1000).toFixed(1)} s)\n`);
      }
    });
}

function loadText(dir: string): TextTokenizer {
  const file = join(dir, 'tokenizer.json');
  return TextTokenizer.fromJSON(readFileSync(file, 'utf8'), file);
}

function loadSpeech(dir: string): SpeechTokenizer {
  const file = join(dir, TOKENIZER_FILE);
  return SpeechTokenizer.fromJSON(readFileSync(file, 'utf8'), file);
}

/** A run folder means its latest checkpoint; a checkpoint folder means itself. */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`no run or checkpoint folder at ${path}`);
  if (existsSync(join(path, 'state.json'))) return path;
  const latest = latestCheckpoint(join(path, 'checkpoints'));
  if (!latest) throw new Error(`run ${path} has no checkpoint yet (checkpoints/latest.json is missing)`);
  return latest;
}
