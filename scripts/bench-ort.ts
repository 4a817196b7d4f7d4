/**
 * Training tokens/s of the ONNX engine on the reference tower of ENGINE.md (d=128, 4 layers,
 * 4 heads, seq 128, vocab 512, batch 16, Adam), one intra-op thread, median of timed steps after a
 * warm-up step (which also compiles the graph and creates the session).
 *
 * `ortTrainTokensPerSecond` is for scripts/bench.ts. Run directly, this compares it with tfjs-wasm
 * in the same process, alternating rounds, and prints the CPU because only ratios from one run mean
 * much:
 *
 *   npm run build && node dist/scripts/bench-ort.js [--steps N] [--rounds R]
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { initialState, type TrainEngine } from '../src/engine/engine.js';
import { OrtEngine } from '../src/engine/onnx/ort-engine.js';
import { lmBatch } from '../src/data/lm.js';
import { initParams } from '../src/model/params.js';
import { towerModel } from '../src/model/tower.js';
import { Rng } from '../src/util/rng.js';

const REF = { d_model: 128, n_layers: 4, n_heads: 4, ff_mult: 4, max_len: 128, vocab_size: 512 };
const SEQ = 128;
const BATCH = 16;
const TOKENS = SEQ * BATCH;
const OPT = { betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0, clipNorm: 1 };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function referenceBatch() {
  const rng = new Rng(1);
  return lmBatch(Array.from({ length: BATCH }, () => Int32Array.from({ length: SEQ + 1 }, () => 3 + rng.int(REF.vocab_size - 3))));
}

/** Median tokens/s of `steps` timed training steps after one warm-up step. */
async function tokensPerSecond(eng: TrainEngine, steps: number): Promise<number> {
  const model = towerModel(REF);
  await eng.load(initialState(model, initParams(model.specs, 0)));
  const batch = referenceBatch();
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    await eng.trainStep(batch, i + 1, 1e-3);
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  return TOKENS / median(times);
}

export async function ortTrainTokensPerSecond(steps: number): Promise<number> {
  const eng = new OrtEngine(towerModel(REF), OPT, { providers: ['cpu'], intraOpNumThreads: 1 });
  try {
    return await tokensPerSecond(eng, steps);
  } finally {
    eng.dispose();
  }
}

async function wasmTrainTokensPerSecond(steps: number): Promise<number> {
  const { initBackend } = await import('../src/engine/backends.js');
  const { TfjsEngine } = await import('../src/engine/tfjs-engine.js');
  await initBackend('wasm');
  const eng = new TfjsEngine(towerModel(REF), OPT);
  try {
    return await tokensPerSecond(eng, steps);
  } finally {
    eng.dispose();
  }
}

async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const steps = arg('steps', 5);
  const rounds = arg('rounds', 2);
  const flags = (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '').split(' ');
  console.log(`CPU: ${cpus()[0]?.model} x${cpus().length} [${['avx2', 'avx512f', 'fma'].filter((f) => flags.includes(f)).join(' ')}]; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
  console.log(`reference tower, ${TOKENS} tokens/step, ${steps} timed steps per round, ${rounds} alternating rounds`);
  const ort: number[] = [];
  const wasm: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ort.push(await ortTrainTokensPerSecond(steps));
    wasm.push(await wasmTrainTokensPerSecond(Math.max(2, Math.ceil(steps / 3))));
    console.log(`round ${r + 1}: ort ${ort.at(-1)!.toFixed(0)} tokens/s, tfjs-wasm ${wasm.at(-1)!.toFixed(0)} tokens/s`);
  }
  console.log(`median: ort ${median(ort).toFixed(0)}, tfjs-wasm ${median(wasm).toFixed(0)}, ratio ${(median(ort) / median(wasm)).toFixed(2)}x`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
