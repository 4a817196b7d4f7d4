/**
 * `npm run bench`: the speed and memory figures of issues 8 and 9, ratios taken in one run.
 *
 * The reference tower of ENGINE.md (d=128, 4 layers, 4 heads, ff 4x, seq 128, vocab 512, batch 16,
 * Adam, clipping 1.0), and the same at d=256, on the ONNX engine (onnxruntime, one intra-op
 * thread), tfjs-wasm (one thread in Node) and PyTorch (Debian's python3-torch with OpenBLAS, one
 * thread), every side from the same weights and batch:
 *   1. training tokens/s at d=128, 2. at d=256, 3. forward tokens/s (full-sequence logits),
 *   4. greedy decoding tokens/s with the KV cache, 5. peak memory of training steps, each engine
 *   in a fresh process, 6. other tfjs backends (opt-in: cpu is ~200x slower than PyTorch).
 * Engines alternate round by round (ort, wasm, torch, ort, ...) and each figure is the median of
 * the rounds' medians, so a burst of load from elsewhere hits every engine alike. Every engine
 * keeps its model between rounds (PyTorch in a long-lived child): the figures are steady-state
 * steps; start-up, graph compilation and session creation fall in the first round's warm-up step.
 * The CPU and load average are printed because only ratios from one run mean much.
 *
 *   npm run bench -- [--steps N] [--rounds R] [--quick] [--json out.json] [--no-speech]
 *                    [--backends cpu,webgpu,tensorflow] [--no-torch] [--no-memory] [--no-zipper]
 *
 * --steps: timed calls per round for ort and PyTorch (default 8; d=256 half, tfjs-wasm a quarter);
 * --rounds: alternating rounds (default 5); --quick: 2 rounds of 3, a smoke test (about a minute);
 * --backends: tfjs backends besides wasm, timed once after the rest (opt-in: slow);
 * --no-torch / --no-memory / --no-zipper: skip the PyTorch peer / the memory children / the
 * zipped model's figures (scripts/bench/zipper.ts: training with and without a frozen tower,
 * decoding with and without the KV cache). About 2-3 minutes by
 * default on 2 cores.
 *
 * Memory: "before" is the RSS once the engine holds the model (ort: weights and both Adam moments
 * in its worker, onnxruntime loaded; PyTorch: training and inference copies of the model, Adam's
 * state not yet allocated, torch allocates it lazily); "peak" is the process's maxRSS after the
 * steps (ort's compiled graph is read from the timing rounds' cache, so recording it in JavaScript
 * does not count).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TowerShape } from '../src/config/schema.js';
import { initBackend, type BackendName } from '../src/engine/backends.js';
import { projectRoot } from '../src/cli/common.js';
import { countParams } from '../src/model/params.js';
import { towerSpecs } from '../src/model/tower.js';
import { Rng } from '../src/util/rng.js';
import { BATCH, SEQ, TOKENS, benchBatch, benchWeights, firstLine, loadAverage, machine, median, printTable, ratio, towerShape, verdict, type Cell } from './bench/common.js';
import { ortSide, tfjsSide, torchSide, type Side, type Timed } from './bench/sides.js';
import { PYTHON, TorchPeer, peerEnv, writeWeights } from './bench/torch-peer.js';
import { synthBench } from './bench/synth.js';
import { speechTokenBench } from './bench/speech-tokens.js';
import { zipperBench } from './bench/zipper.js';

// ---- options ----
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('quick');
const steps = Number(opt('steps') ?? (quick ? 3 : 8));
const rounds = Number(opt('rounds') ?? (quick ? 2 : 5));
const jsonPath = opt('json');
const extraBackends = (opt('backends') ?? '').split(',').filter((b) => b && b !== 'wasm') as BackendName[];
if (!(steps >= 1 && rounds >= 1)) throw new Error('--steps and --rounds take positive numbers');
/** tfjs-wasm is ~10x slower than the others: fewer timed calls per round. */
const wasmSteps = Math.max(1, Math.round(steps / 4));
const DECODE = { prompts: 8, promptLen: 16, newTokens: 64 };
const decodeReps = quick ? 1 : 2;
const memSteps = quick ? 2 : 3;
const steps256 = Math.max(1, Math.ceil(steps / 2));
const wasmSteps256 = quick ? 1 : 2;

const log = (s: string) => process.stderr.write(`${s}\n`);

// ---- alternating rounds ----
interface Entry {
  side: Side;
  /** Timed calls per round. */
  n: number;
}
interface Measured {
  label: string;
  /** Units (tokens) per second, one per round. */
  rounds: number[];
  median: number | null;
  /** What the last call returned (logits row, tokens), for the same-function checks. */
  out?: unknown;
  error?: string;
}

/**
 * `rounds` rounds of each entry in turn; each round's rate is units / the median call time of
 * that round. The first round of each entry starts with one untimed warm-up call.
 */
async function alternate(what: string, entries: Entry[], units: number, call: (s: Side, n: number, warmup: number) => Promise<Timed<unknown>>, nRounds = rounds): Promise<Map<string, Measured>> {
  const res = new Map<string, Measured>(entries.map((e) => [e.side.label, { label: e.side.label, rounds: [], median: null }]));
  for (let r = 0; r < nRounds; r++) {
    const line: string[] = [];
    for (const e of entries) {
      const m = res.get(e.side.label)!;
      if (m.error) continue;
      try {
        const t = await call(e.side, e.n, r === 0 ? 1 : 0);
        m.rounds.push(units / median(t.times));
        m.out = t.out;
        line.push(`${e.side.label} ${m.rounds.at(-1)!.toFixed(0)}`);
      } catch (err) {
        m.error = firstLine(err);
        line.push(`${e.side.label} failed: ${m.error}`);
      }
    }
    log(`  ${what}, round ${r + 1}/${nRounds} (${loadAverage().split(' ')[0]} load): ${line.join(', ')} tokens/s`);
  }
  for (const m of res.values()) m.median = m.rounds.length ? median(m.rounds) : null;
  return res;
}

// ---- helpers for the report ----
const maxAbsDiff = (a: unknown, b: unknown) => {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return null;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};
const sameTokens = (a: unknown, b: unknown) => {
  if (!Array.isArray(a) || !Array.isArray(b)) return null;
  const fa = (a as number[][]).flat();
  const fb = (b as number[][]).flat();
  let same = 0;
  for (let i = 0; i < Math.min(fa.length, fb.length); i++) if (fa[i] === fb[i]) same++;
  return `${same}/${Math.max(fa.length, fb.length)}`;
};

function runMemChild(engine: string, d: number, cacheDir: string): { rss_before_mb: number; maxrss_mb: number } {
  const script = join(fileURLToPath(new URL('.', import.meta.url)), 'bench', 'mem-child.js');
  const out = execFileSync(process.execPath, [script, engine, String(d), String(memSteps), cacheDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop()!);
}

function torchMem(d: number, dir: string): { rss_before_mb: number; maxrss_mb: number } {
  // A fresh peer: its own process, so the timing peer's peaks do not count.
  const shape = towerShape(d);
  const reqs = [
    { cmd: 'setup', name: 'm', d_model: d, n_layers: shape.n_layers, n_heads: shape.n_heads, ff_mult: shape.ff_mult, seq_len: SEQ, vocab: shape.vocab_size, batch: BATCH, weights: join(dir, `weights-d${d}.f32`), specs: towerSpecs(shape).map((s) => [s.name, s.shape]) },
    { cmd: 'rss' },
    { cmd: 'train', name: 'm', steps: memSteps, warmup: 0 },
    { cmd: 'rss' },
    { cmd: 'quit' },
  ];
  const out = execFileSync(PYTHON, [join(projectRoot(), 'scripts', 'torch_peer.py')], {
    env: peerEnv(),
    input: reqs.map((r) => JSON.stringify(r)).join('\n') + '\n',
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number & string>);
  const err = lines.find((l) => l.error);
  if (err) throw new Error(err.error);
  return { rss_before_mb: lines[2]!.rss_mb, maxrss_mb: lines[4]!.maxrss_mb };
}

// ---- the run ----
async function main(): Promise<void> {
  const t0 = performance.now();
  const mach = machine();
  const dir = mkdtempSync(join(tmpdir(), 'zipper-bench-'));
  const cacheDir = join(dir, 'graphs');
  const json: Record<string, unknown> = { machine: mach, options: { steps, rounds, wasmSteps, quick } };

  let peer: TorchPeer | null = null;
  let torchError = 'skipped (--no-torch)';
  if (!flag('no-torch')) {
    try {
      peer = await TorchPeer.start();
    } catch (e) {
      torchError = `unavailable: ${firstLine(e)}`;
    }
  }
  let wasmError: string | null = null;
  try {
    await initBackend('wasm');
  } catch (e) {
    wasmError = `unavailable: ${firstLine(e)}`;
  }

  console.log(`CPU: ${mach.cpu} x${mach.cores} [${mach.flags.join(' ')}]; node ${mach.node}; load average at start ${mach.loadavg}`);
  console.log(`PyTorch peer: ${peer ? `torch ${peer.version}, ${PYTHON}, OpenBLAS, OMP/OPENBLAS_NUM_THREADS=1` : torchError}; tfjs-wasm: ${wasmError ?? 'one thread (Node)'}; ort: onnxruntime-node, cpu provider, 1 intra-op thread`);
  console.log(`tower: 4 layers, 4 heads, ff 4x, seq ${SEQ}, vocab 512, batch ${BATCH} (${TOKENS} tokens a step), Adam, clip 1.0, same weights and batch everywhere`);
  console.log(`${rounds} alternating rounds (ort, tfjs-wasm, pytorch), timed calls per round: train d=128 ${steps} (wasm ${wasmSteps}), forward ${steps} (wasm ${wasmSteps}), decode ${decodeReps} (wasm 1), train d=256 ${steps256} (wasm: one round of ${wasmSteps256}); one warm-up call before the first round; figure = median of the round medians`);

  const setups = new Map<number, { shape: TowerShape; sides: Side[] }>();
  async function sidesFor(d: number): Promise<Side[]> {
    const have = setups.get(d);
    if (have) return have.sides;
    const shape = towerShape(d);
    const weights = benchWeights(shape);
    const batch = benchBatch(shape.vocab_size);
    const sides: Side[] = [ortSide(shape, weights, batch, cacheDir)];
    if (!wasmError) sides.push(await tfjsSide('wasm', shape, weights, batch));
    const w = writeWeights(dir, `d${d}`, shape, weights);
    if (peer) {
      await peer.setup(`d${d}`, shape, w, batch);
      sides.push(torchSide(peer, `d${d}`));
    }
    setups.set(d, { shape, sides });
    return sides;
  }
  const entries = (sides: Side[], n: number, nWasm: number) => sides.map((side) => ({ side, n: side.label.startsWith('tfjs') ? nWasm : n }));

  // 1-3: training at d=128 and d=256, forward at d=128.
  log('training, d=128');
  const s128 = await sidesFor(128);
  const train128 = await alternate('train d=128', entries(s128, steps, wasmSteps), TOKENS, (s, n, w) => s.train(n, w));
  log('forward, d=128');
  const fwd128 = await alternate('forward d=128', entries(s128, steps, wasmSteps), TOKENS, (s, n, w) => s.forward(n, w));
  log('greedy decoding, d=128');
  const rng = new Rng(2);
  const prompts = Array.from({ length: DECODE.prompts }, () => Array.from({ length: DECODE.promptLen }, () => 3 + rng.int(512 - 3)));
  const dec128 = await alternate('decode d=128', entries(s128, decodeReps, 1), DECODE.prompts * DECODE.newTokens, (s, n, w) => s.decode(prompts, DECODE.newTokens, n, w));
  for (const s of s128) s.dispose();

  log('training, d=256');
  const s256 = await sidesFor(256);
  // tfjs-wasm at d=256 takes seconds a step: one round, two timed steps.
  const wasm256 = s256.filter((s) => s.label.startsWith('tfjs'));
  const train256 = await alternate('train d=256', entries(s256.filter((s) => !s.label.startsWith('tfjs')), steps256, 1), TOKENS, (s, n, w) => s.train(n, w));
  for (const [k, v] of await alternate('train d=256', entries(wasm256, 1, wasmSteps256), TOKENS, (s, n, w) => s.train(n, w), 1)) train256.set(k, v);
  for (const s of s256) s.dispose();

  // 5: memory, each engine in a fresh process.
  type Mem = { engine: string; d: number; rss_before_mb?: number; maxrss_mb?: number; error?: string };
  const mem: Mem[] = [];
  if (!flag('no-memory')) {
    log('peak memory of training steps, a fresh process each');
    const jobs: [string, number][] = [['ort', 128], ['pytorch', 128], ['tfjs-wasm', 128], ['ort', 256], ['pytorch', 256]];
    for (const [engine, d] of jobs) {
      if (engine === 'pytorch' && !peer) continue;
      if (engine === 'tfjs-wasm' && wasmError) continue;
      try {
        const r = engine === 'pytorch' ? torchMem(d, dir) : runMemChild(engine === 'ort' ? 'ort' : 'wasm', d, cacheDir);
        mem.push({ engine, d, rss_before_mb: r.rss_before_mb, maxrss_mb: r.maxrss_mb });
        log(`  ${engine} d=${d}: ${r.rss_before_mb.toFixed(0)} MB before, ${r.maxrss_mb.toFixed(0)} MB peak`);
      } catch (e) {
        mem.push({ engine, d, error: firstLine((e as { stderr?: string }).stderr || e) });
      }
    }
  }

  // 6: other tfjs backends, opt-in.
  const extra: [string, number | string][] = [];
  for (const b of extraBackends) {
    log(`tfjs ${b}, d=128`);
    try {
      await initBackend(b, { allowSoftwareGpu: true });
      const shape = towerShape(128);
      const side = await tfjsSide(b, shape, benchWeights(shape), benchBatch(shape.vocab_size));
      try {
        const r = await alternate(`train d=128 tfjs-${b}`, [{ side, n: b === 'cpu' ? 1 : Math.min(steps, 2) }], TOKENS, (s, n, w) => s.train(n, w), 1);
        const m = r.get(side.label)!;
        extra.push([b, m.median ?? m.error ?? 'failed']);
      } finally {
        side.dispose();
      }
    } catch (e) {
      extra.push([b, `unavailable: ${firstLine(e)}`]);
    }
  }
  peer?.close();

  // ---- report ----
  const g = (m: Map<string, Measured>, label: string) => m.get(label)?.median ?? null;
  const cell = (m: Map<string, Measured>, label: string, missing: string): Cell => {
    const x = m.get(label);
    return x?.median ?? (x?.error ? `failed: ${x.error}` : missing);
  };
  const W = 'tfjs-wasm';
  const noTorch = peer ? 'failed' : '-';
  const noWasm = wasmError ? '-' : 'failed';
  const measures: [string, Map<string, Measured>][] = [
    ['train tokens/s, d=128', train128],
    ['train tokens/s, d=256', train256],
    ['forward tokens/s, d=128', fwd128],
    [`greedy decode tokens/s, d=128 (${DECODE.prompts} prompts x ${DECODE.promptLen}, +${DECODE.newTokens}, KV cache)`, dec128],
  ];
  console.log('');
  printTable(
    ['measure', 'ort (1 thread)', W, 'pytorch (1 thread)', 'ort / pytorch', 'ort / wasm'],
    measures.map(([name, m]) => [name, cell(m, 'ort', 'failed'), cell(m, W, noWasm), cell(m, 'pytorch', noTorch), ratio(g(m, 'ort'), g(m, 'pytorch')), ratio(g(m, 'ort'), g(m, W))]),
  );
  console.log('');
  console.log('round by round (tokens/s):');
  for (const [name, m] of measures) console.log(`  ${name.split(' (')[0]}: ${[...m.values()].map((x) => `${x.label} ${x.rounds.map((r) => r.toFixed(0)).join(' / ') || '-'}`).join('; ')}`);

  if (mem.length) {
    console.log('');
    const find = (e: string, d: number) => mem.find((x) => x.engine === e && x.d === d);
    printTable(
      ['peak memory of training (fresh process each)', 'RSS before the first step, MB', 'peak RSS after steps, MB', 'peak - before, MB'],
      mem.map((x) => [
        `${x.engine} d=${x.d}`,
        x.error ? `failed: ${x.error}` : x.rss_before_mb,
        x.maxrss_mb,
        x.maxrss_mb !== undefined && x.rss_before_mb !== undefined ? x.maxrss_mb - x.rss_before_mb : null,
      ]),
    );
    const over = (d: number) => {
      const a = find('ort', d);
      const b = find('pytorch', d);
      return a?.maxrss_mb && b?.maxrss_mb && a.rss_before_mb && b.rss_before_mb ? `ort/pytorch at d=${d}: peak ${ratio(a.maxrss_mb, b.maxrss_mb)}, step ${ratio(a.maxrss_mb - a.rss_before_mb, b.maxrss_mb - b.rss_before_mb)}` : null;
    };
    const lines = [over(128), over(256)].filter(Boolean);
    if (lines.length) console.log(lines.join('; '));
  }

  if (extra.length) {
    console.log('');
    const p = g(train128, 'pytorch');
    printTable(['other tfjs backends, d=128', 'train tokens/s', 'vs pytorch'], extra.map(([b, v]) => [`tfjs-${b}`, v, ratio(typeof v === 'number' ? v : null, p)]));
  }

  console.log('');
  console.log('same function (same weights and batch): forward logits at the last position of row 0, max |x - ort|: ' +
    [W, 'pytorch'].map((l) => `${l} ${maxAbsDiff(fwd128.get(l)?.out, fwd128.get('ort')?.out)?.toExponential(1) ?? '-'}`).join(', ') +
    `; greedy tokens equal to ort's: ` + [W, 'pytorch'].map((l) => `${l} ${sameTokens(dec128.get(l)?.out, dec128.get('ort')?.out) ?? '-'}`).join(', '));

  const targets: [string, number | null, number | null, number][] = [
    ['train d=128: ort >= 1.0x pytorch', g(train128, 'ort'), g(train128, 'pytorch'), 1.0],
    ['train d=128: ort >= 8x tfjs-wasm', g(train128, 'ort'), g(train128, W), 8],
    ['train d=256: ort >= 1.0x pytorch', g(train256, 'ort'), g(train256, 'pytorch'), 1.0],
    ['train d=256: ort >= 8x tfjs-wasm', g(train256, 'ort'), g(train256, W), 8],
    ['forward d=128: ort >= 1.2x pytorch', g(fwd128, 'ort'), g(fwd128, 'pytorch'), 1.2],
    ['greedy decode d=128: ort >= 1.2x pytorch', g(dec128, 'ort'), g(dec128, 'pytorch'), 1.2],
  ];
  console.log('\ntargets (issue 9):');
  for (const [name, a, b, t] of targets) {
    const v = verdict(a, b, t);
    console.log(`  ${name}: ${v}${v.startsWith('-') ? '' : ` (${ratio(a, b)})`}`);
  }
  // Issue 3's figures: synthesis, features + units, and the codebook. --no-speech skips them.
  if (!flag('no-speech')) {
    json.synthesis = await synthBench({ quick });
    const st = await speechTokenBench({ quick });
    json.speech_tokens = st;
    console.log(`\n## Speech tokens (K=${st.k}, ${st.audio_seconds.toFixed(0)} s of flite speech, one core unless said; load average ${loadAverage()})\n`);
    console.log('| measure | x real time |\n|---|---|');
    console.log(`| log-mel features (+ normalisation, stacking) | ${st.features_x_real_time.toFixed(0)} |`);
    for (const m of st.search) console.log(`| nearest-centroid search: ${m.method} (${m.gflops.toFixed(1)} GFLOP/s) | ${m.x_real_time.toFixed(0)} |`);
    console.log(`| features + units (onnxruntime search) | ${st.tokens_x_real_time.toFixed(0)} |`);
    for (const w of st.workers) console.log(`| zipper tokenize path (FLAC decode + features + units), ${w.workers} worker(s) | ${w.x_real_time.toFixed(0)} |`);
    console.log(`\ncodebook: K=${st.codebook.k} on ${st.codebook.vectors} vectors, ${st.codebook.iterations} Lloyd iterations, ${st.codebook.workers} workers: ${st.codebook.seconds.toFixed(1)} s`);
    console.log(`target (issue 3): features + tokenization >= ${st.target_x_real_time}x real time on one core: ${st.tokens_x_real_time >= st.target_x_real_time ? 'met' : 'NOT met'} (${st.tokens_x_real_time.toFixed(0)}x)`);
    // The speech tower is the text tower's definition over 1,027 speech tokens (K=1024 + 3 specials).
    const speechShape = { ...towerShape(128), vocab_size: 1027 };
    const speech = ortSide(speechShape, benchWeights(speechShape), benchBatch(speechShape.vocab_size), cacheDir);
    const st2 = await speech.train(steps, 1);
    speech.dispose();
    json.speech_tower_train_tokens_per_s = TOKENS / median(st2.times);
    console.log(`speech tower (d=128, 4 layers, vocab 1027, seq ${SEQ}, batch ${BATCH}): ort trains ${(TOKENS / median(st2.times)).toFixed(0)} tokens/s`);
  }

  // Issue 4's figures: the zipped model. --no-zipper skips them.
  if (!flag('no-zipper')) json.zipper = await zipperBench({ steps: Math.max(2, Math.ceil(steps / 2)), rounds });

  const secs = (performance.now() - t0) / 1000;
  console.log(`\nload average at end ${loadAverage()}; ${secs.toFixed(0)} s`);

  if (jsonPath) {
    const pack = (m: Map<string, Measured>) => Object.fromEntries([...m.values()].map((x) => [x.label, { tokens_per_s: x.median, rounds: x.rounds, ...(x.error ? { error: x.error } : {}) }]));
    Object.assign(json, {
      pytorch: peer ? peer.version : torchError,
      params: { d128: countParams(towerSpecs(towerShape(128))), d256: countParams(towerSpecs(towerShape(256))) },
      train_d128: pack(train128),
      train_d256: pack(train256),
      forward_d128: pack(fwd128),
      decode_d128: { ...pack(dec128), setup: DECODE },
      memory_mb: mem,
      other_backends: Object.fromEntries(extra),
      targets: targets.map(([name, a, b, t]) => ({ name, ratio: a && b ? a / b : null, target: t, met: a && b ? a / b >= t : null })),
      loadavg_end: loadAverage(),
      seconds: secs,
    });
    writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`wrote ${jsonPath}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
// The ORT workers are unreferenced and the peer has been told to quit; tfjs-wasm may hold handles.
process.exit(0);
