import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PretrainConfig } from '../config/schema.js';
import { generate } from '../decode/sample.js';
import { chooseEngine, createTowerDecoder, describeEngine, FUSED_DECODE_ORT, type EngineRequest } from '../engine/select.js';
import { towerModel } from '../model/tower.js';
import { TextTokenizer } from '../tokenizers/text.js';
import { unitsToWav } from '../tokenizers/speech/invert.js';
import { readAudioAt, writeWav } from '../data/audio.js';
import { FusedDecoder } from '../decode/fused-decoder.js';
import { FUSED_MODEL_FILE, loadFusedRun } from '../train/fused.js';
import { latestCheckpoint } from '../train/checkpoint.js';
import { writeFileAtomic } from '../util/fs.js';
import { loadCheckpoint, readCheckpointInfo } from '../train/checkpoint.js';
import { loadSpeechTokenizer, loadTextTokenizer, resolveCheckpoint } from '../train/tower-run.js';

export function addGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample from a pretrained tower (text, or speech as WAV); with a fine-tuned model, transcribe --audio or speak --text')
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
    .option('--audio <files...>', 'fine-tuned models: transcribe these .flac/.wav files (ASR)')
    .option('--text <texts...>', 'fine-tuned models: speak these texts (TTS): speech units + WAV under --out')
    .option('--beam <n>', 'fine-tuned models: beam size (1: greedy for --audio; sampling with --temperature for --text)', (v) => parseInt(v, 10), 1)
    .option('--checkpoint <which>', 'fine-tuned models: best (by dev loss) or latest', 'best')
    .action(async (o) => {
      if (isFusedRun(o.run)) return generateFused(o);
      if (o.audio || o.text) throw new Error(`--audio and --text need a fine-tuned model (zipper fuse); ${o.run} is a pretrained tower`);
      const dir = resolveCheckpoint(o.run);
      const info = readCheckpointInfo(dir);
      const cfg = loadConfig(PretrainConfig, { file: join(dir, 'config.yaml') });
      if (info.modality === 'speech' && o.prompt) throw new Error('--prompt is text; a speech tower generates from <boa> (begin of audio)');
      const tok = info.modality === 'text' ? loadTextTokenizer(dir) : loadSpeechTokenizer(dir);
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

/** A `zipper fuse` run (or one of its checkpoints): its checkpoints carry model.json. */
function isFusedRun(path: string): boolean {
  if (existsSync(join(path, FUSED_MODEL_FILE))) return true;
  for (const sub of ['best', 'checkpoints']) {
    const ck = existsSync(join(path, sub)) ? latestCheckpoint(join(path, sub)) : null;
    if (ck && existsSync(join(ck, FUSED_MODEL_FILE))) return true;
  }
  return false;
}

async function generateFused(o: { run: string; audio?: string[]; text?: string[]; beam: number; checkpoint: string; engine: string; backend: string; out?: string; temperature: number; topK: number; seed: number }): Promise<void> {
  if (!o.audio?.length && !o.text?.length) throw new Error('a fine-tuned model needs --audio <files> (transcribe) or --text <texts> (speak)');
  if (o.checkpoint !== 'best' && o.checkpoint !== 'latest') throw new Error(`--checkpoint ${o.checkpoint}: expected best or latest`);
  const run = loadFusedRun(o.run, o.checkpoint);
  const choice = await chooseEngine(o.engine as EngineRequest, o.backend, FUSED_DECODE_ORT);
  const dec = await FusedDecoder.open(run, choice);
  console.error(`${describeEngine(choice)}; ${run.json.architecture} ${run.checkpoint} (step ${run.step})`);
  try {
    if (o.audio?.length) {
      const rate = run.speech.config.mel.sample_rate;
      const units = o.audio.map((f) => run.speech.encodeAudio(readAudioAt(f, rate).samples, rate, f));
      const got = await dec.transcribe(units, { beam: o.beam, batch: 16 });
      got.forEach((g, i) => process.stdout.write(`${o.audio![i]}\t${g.text.trim()}\n`));
    }
    if (o.text?.length) {
      const outDir = o.out ?? join(o.run, 'samples');
      mkdirSync(outDir, { recursive: true });
      // Speech is sampled (--temperature, --top-k) unless a beam is asked for: greedy speech
      // decoding falls into loops of a few units, as speech LMs do.
      const sample = o.beam === 1 && o.temperature > 0 ? { temperature: o.temperature, topK: o.topK, seed: o.seed } : undefined;
      const got = await dec.synthesize(o.text, { beam: o.beam, batch: 16, ...(sample ? { sample } : {}) });
      for (const [i, ids] of got.entries()) {
        const base = join(outDir, `tts-${i}`);
        await writeFileAtomic(`${base}.units.json`, JSON.stringify({ text: o.text[i], units: ids }) + '\n');
        writeWav(`${base}.wav`, unitsToWav(run.speech, ids), run.speech.config.mel.sample_rate);
        process.stdout.write(`${base}.wav\t${ids.length} units (${((ids.length * run.speech.config.mel.hop_ms * run.speech.config.stack) / 1000).toFixed(1)} s)\t${o.text[i]}\n`);
      }
    }
  } finally {
    dec.dispose();
  }
}
