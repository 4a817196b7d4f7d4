/**
 * `npm run bench`: training tokens/s of the reference tower of ENGINE.md (d=128, 4 layers, 4 heads,
 * seq 128, vocab 512, batch 16, Adam) on every tfjs backend available here, and the same model in
 * PyTorch (Debian's python3-torch) in the same invocation, with ratios. Medians over timed steps
 * after warm-up; the CPU model and flags are printed because only ratios from one run mean much.
 *
 *   npm run bench -- [--steps N] [--backends wasm,cpu,webgpu] [--no-torch]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { initBackend, type BackendName } from '../src/engine/backends.js';
import { initialState } from '../src/engine/engine.js';
import { TfjsEngine } from '../src/engine/tfjs-engine.js';
import { lmBatch } from '../src/data/lm.js';
import { initParams } from '../src/model/params.js';
import { towerModel } from '../src/model/tower.js';
import { projectRoot } from '../src/cli/common.js';
import { Rng } from '../src/util/rng.js';

const REF = { d_model: 128, n_layers: 4, n_heads: 4, ff_mult: 4, max_len: 128, vocab_size: 512 };
const SEQ = 128;
const BATCH = 16;
const TOKENS = SEQ * BATCH;

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const steps = Number(arg('steps') ?? 5);
const backends = (arg('backends') ?? 'tensorflow,wasm,webgpu,cpu').split(',') as BackendName[];

function cpuLine(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const flags = (info.match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '').split(' ');
  const simd = ['avx2', 'avx512f', 'fma'].filter((f) => flags.includes(f));
  return `${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length} [${simd.join(' ')}]; load ${(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function tfjsTokensPerSecond(backend: BackendName): Promise<number | string> {
  try {
    await initBackend(backend, { allowSoftwareGpu: true });
  } catch (e) {
    return `unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
  const model = towerModel(REF);
  const eng = new TfjsEngine(model, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clipNorm: 1 });
  await eng.load(initialState(model, initParams(model.specs, 0)));
  const rng = new Rng(1);
  const rows = Array.from({ length: BATCH }, () => Int32Array.from({ length: SEQ + 1 }, () => 3 + rng.int(REF.vocab_size - 3)));
  const batch = lmBatch(rows);
  // The cpu backend is ~200x slower than PyTorch: time fewer steps there.
  const n = backend === 'cpu' ? Math.min(steps, 2) : steps;
  const times: number[] = [];
  for (let i = 0; i < n + 1; i++) {
    const t0 = performance.now();
    await eng.trainStep(batch, i + 1, 1e-3);
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  eng.dispose();
  return TOKENS / median(times);
}

function torchTokensPerSecond(): number | string {
  const py = '/usr/bin/python3';
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const args = { d_model: REF.d_model, n_layers: REF.n_layers, n_heads: REF.n_heads, seq_len: SEQ, vocab: REF.vocab_size, batch: BATCH, warmup: 2, steps: Math.max(steps, 5), threads: 1 };
  const r = spawnSync(py, [join(projectRoot(), 'scripts', 'torch_peer.py'), JSON.stringify(args)], { env, encoding: 'utf8' });
  if (r.error || r.status !== 0) return `unavailable: ${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || 'python3-torch not installed'}`;
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return TOKENS / out.median_step_s;
}

async function main(): Promise<void> {
  console.log(`CPU: ${cpuLine()}`);
  console.log(`reference tower: d=${REF.d_model} layers=${REF.n_layers} heads=${REF.n_heads} seq=${SEQ} vocab=${REF.vocab_size} batch=${BATCH} (${TOKENS} tokens/step); ${steps} timed steps, median`);
  const results: [string, number | string][] = [];
  if (!process.argv.includes('--no-torch')) results.push(['pytorch (1 thread)', torchTokensPerSecond()]);
  for (const b of backends) results.push([`tfjs ${b}`, await tfjsTokensPerSecond(b)]);
  const peer = results.find(([n]) => n.startsWith('pytorch'))?.[1];
  console.log('\n| engine | train tokens/s | vs PyTorch |\n|---|---|---|');
  for (const [name, v] of results) {
    const ratio = typeof v === 'number' && typeof peer === 'number' ? `${(v / peer).toFixed(3)}x` : '-';
    console.log(`| ${name} | ${typeof v === 'number' ? v.toFixed(0) : v} | ${ratio} |`);
  }
}

await main();
