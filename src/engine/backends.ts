/**
 * The one place that chooses the TensorFlow.js backend. Everything else imports `tf` from here.
 *
 *   const choice = await initBackend(process.env.ZIPPER_BACKEND ?? 'auto');
 *   log.info(describeBackend(choice));
 *
 * Rules (ENGINE.md): a backend that fails is removed from tfjs's registry and the fallback is set
 * explicitly and checked with a tiny op, so tfjs is never left with a half-initialised backend
 * ("highest priority backend ... has not yet been initialized"). An explicit request that fails
 * throws; only 'auto' falls back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { probeWebGpu, registerWebGpuBackend, setWebGpuFlags, type WebGpuProbe } from './webgpu.js';

export { tf };

/** The tfjs namespace (the same object as the `tf` export). */
export function tfjs(): typeof import('@tensorflow/tfjs') {
  return tf;
}

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendAttempt {
  name: string;
  ok: boolean;
  detail: string;
}

export interface BackendChoice {
  name: BackendName;
  reason: string;
  attempts: BackendAttempt[];
  /** WebGPU adapter name, when name is 'webgpu'. */
  adapter?: string;
  /** WebGPU: the adapter is a CPU rasteriser (llvmpipe, lavapipe, ...). */
  software?: boolean;
}

export interface InitBackendOptions {
  /** In 'auto' mode, accept a software WebGPU adapter (slower than wasm). Default false. */
  allowSoftwareGpu?: boolean;
}

export function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

const require = createRequire(import.meta.url);

/* ---------------------------------------------------------------------------------------------- */

interface TryResult {
  ok: boolean;
  detail: string;
  adapter?: string;
  software?: boolean;
  /** Skipped by policy (not broken): a software adapter in auto mode. */
  skipped?: boolean;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n')[0] ?? '').trim().slice(0, 300);
}

let envConfigured = false;
function configureEnv(): void {
  if (envConfigured) return;
  tf.env().set('PROD', true); // no "Hi there" banner, no kernel re-registration warnings
  envConfigured = true;
}

/** tfjs engine internals we need to inspect without side effects (tf.findBackend initialises). */
function engineState(): { backendName: string | null; registry: Record<string, unknown> } {
  return tf.engine() as unknown as { backendName: string | null; registry: Record<string, unknown> };
}

function isInitialised(name: string): boolean {
  return name in engineState().registry;
}

/** Remove a backend that failed, so tfjs never tries it again on its own. */
function dropBackend(name: string): void {
  try {
    if (tf.findBackendFactory(name)) tf.removeBackend(name);
  } catch {
    /* already gone */
  }
}

/** A tiny op on the active backend, read back. */
async function verifyActive(): Promise<void> {
  const y = tf.tidy(() => {
    const x = tf.tensor1d([1, 2, 3]);
    return tf.sum(tf.mul(x, x));
  });
  try {
    const v = (await y.data())[0];
    if (v === undefined || Math.abs(v - 14) > 1e-4) throw new Error(`sanity op gave ${v}, expected 14`);
  } finally {
    y.dispose();
  }
}

/** Set an already registered backend and check it with a tiny op; on failure drop it. */
async function activate(name: string): Promise<TryResult> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    dropBackend(name);
    return { ok: false, detail: `setBackend threw: ${firstLine(e)}` };
  }
  if (!ok) {
    dropBackend(name);
    return { ok: false, detail: 'backend failed to initialise' };
  }
  try {
    await verifyActive();
  } catch (e) {
    dropBackend(name);
    return { ok: false, detail: `sanity op failed: ${firstLine(e)}` };
  }
  return { ok: true, detail: 'ok' };
}

/* --- tensorflow (tfjs-node-gpu / tfjs-node) --------------------------------------------------- */

let tensorflowLoad: Promise<{ ok: boolean; detail: string }> | undefined;

function describeNodeImportError(e: unknown): string {
  const msg = firstLine(e);
  if (/tfjs_binding\.node/.test(msg)) return 'native binding tfjs_binding.node missing (libtensorflow not installed)';
  if ((e as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(msg)) {
    return 'package not installed';
  }
  return msg;
}

function loadTensorflow(): Promise<{ ok: boolean; detail: string }> {
  tensorflowLoad ??= (async () => {
    const notes: { pkg: string; why: string }[] = [];
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        // Imported by a computed name so TypeScript does not need the (optional) packages' types.
        await import(pkg);
        if (tf.findBackendFactory('tensorflow')) return { ok: true, detail: `${pkg} loaded` };
        notes.push({ pkg, why: `loaded but registered no 'tensorflow' backend` });
      } catch (e) {
        notes.push({ pkg, why: describeNodeImportError(e) });
      }
    }
    // Same reason for both packages (the usual case): say it once.
    const whys = [...new Set(notes.map((n) => n.why))];
    const detail = whys
      .map((why) => `${notes.filter((n) => n.why === why).map((n) => n.pkg).join(', ')}: ${why}`)
      .join('; ');
    return { ok: false, detail };
  })();
  return tensorflowLoad;
}

async function tryTensorflow(): Promise<TryResult> {
  if (!tf.findBackendFactory('tensorflow')) {
    const load = await loadTensorflow();
    if (!load.ok || !tf.findBackendFactory('tensorflow')) {
      return { ok: false, detail: load.ok ? 'tensorflow backend no longer registered' : load.detail };
    }
  }
  return activate('tensorflow');
}

/* --- webgpu ------------------------------------------------------------------------------------ */

function hasGpuDeviceNode(): boolean {
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  return list('/dev/dri').some((f) => f.startsWith('renderD')) || list('/dev').some((f) => /^nvidia\d+$/.test(f));
}

function webgpuDetail(p: WebGpuProbe): string {
  return `${p.adapter}${p.software ? ' (software)' : ''} via ${p.path}`;
}

async function tryWebgpu(auto: boolean, allowSoftware: boolean): Promise<TryResult> {
  // Without a GPU device node only a software adapter can exist: skip the probe (about 0.5 s, and
  // Dawn's GLES path prints warnings) when auto mode would refuse that adapter anyway.
  if (auto && !allowSoftware && process.platform === 'linux' && !hasGpuDeviceNode()) {
    return { ok: false, skipped: true, detail: 'skipped: no GPU device node (/dev/dri/renderD*, /dev/nvidia*), so only a software adapter could exist' };
  }
  const probe = await probeWebGpu();
  if (!probe.ok) return { ok: false, detail: probe.detail };
  if (auto && probe.software && !allowSoftware) {
    return {
      ok: false,
      skipped: true,
      adapter: probe.adapter,
      software: true,
      detail: `skipped software adapter ${webgpuDetail(probe)}: slower than wasm on a CPU ` +
        `(request 'webgpu' explicitly, or allowSoftwareGpu, to use it)`,
    };
  }
  if (!isInitialised('webgpu')) {
    try {
      await registerWebGpuBackend();
    } catch (e) {
      dropBackend('webgpu');
      return { ok: false, detail: `cannot load @tensorflow/tfjs-backend-webgpu: ${firstLine(e)}` };
    }
  }
  setWebGpuFlags(); // WEBGPU_CPU_FORWARD=false, or small ops silently run on the CPU
  const r = await activate('webgpu');
  return { ...r, adapter: probe.adapter, software: probe.software, detail: r.ok ? webgpuDetail(probe) : r.detail };
}

/* --- wasm -------------------------------------------------------------------------------------- */

let wasmLoad: Promise<{ ok: boolean; detail: string }> | undefined;

function loadWasm(): Promise<{ ok: boolean; detail: string }> {
  wasmLoad ??= (async () => {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      try {
        // Point it at the package's own .wasm files, whatever the working directory.
        const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
        wasm.setWasmPaths(dist + path.sep);
      } catch {
        /* its Node default (next to its own script) works too */
      }
      return { ok: true, detail: 'loaded' };
    } catch (e) {
      return { ok: false, detail: `cannot load @tensorflow/tfjs-backend-wasm: ${firstLine(e)}` };
    }
  })();
  return wasmLoad;
}

async function tryWasm(): Promise<TryResult> {
  const load = await loadWasm();
  if (!load.ok) return { ok: false, detail: load.detail };
  if (!tf.findBackendFactory('wasm')) return { ok: false, detail: 'wasm backend failed earlier in this process' };
  const r = await activate('wasm');
  if (!r.ok) return r;
  let simd = '?';
  try {
    simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'on' : 'off';
  } catch {
    /* flag missing */
  }
  return { ok: true, detail: `ok (SIMD ${simd}, 1 thread in Node)` };
}

/* --- cpu --------------------------------------------------------------------------------------- */

async function tryCpu(): Promise<TryResult> {
  if (!tf.findBackendFactory('cpu')) return { ok: false, detail: 'cpu backend not registered' };
  return activate('cpu');
}

/* ---------------------------------------------------------------------------------------------- */

function tryBackend(name: BackendName, auto: boolean, opts: InitBackendOptions): Promise<TryResult> {
  switch (name) {
    case 'tensorflow':
      return tryTensorflow();
    case 'webgpu':
      return tryWebgpu(auto, opts.allowSoftwareGpu ?? false);
    case 'wasm':
      return tryWasm();
    case 'cpu':
      return tryCpu();
  }
}

/** After a failed explicit request: go back to the backend that was active, else cpu. */
async function restoreUsable(previous: string | null): Promise<string> {
  const candidates = [previous, 'cpu'].filter((n): n is string => !!n && isInitialised(n));
  if (!candidates.includes('cpu')) candidates.push('cpu');
  for (const n of candidates) {
    const r = await activate(n);
    if (r.ok) return n;
  }
  return 'none';
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Choose and initialise the tfjs backend. `requested` comes from the caller (e.g. --backend or
 * ZIPPER_BACKEND). An explicit name must work or this throws (tfjs is left on the previously
 * active backend, else cpu). 'auto' tries tensorflow, webgpu (hardware adapters only, unless
 * allowSoftwareGpu), wasm, cpu. Calls are serialised; call it again to switch backends.
 */
export function initBackend(requested: BackendName | 'auto', opts: InitBackendOptions = {}): Promise<BackendChoice> {
  const run = queue.then(() => initBackendNow(requested, opts));
  queue = run.catch(() => undefined);
  return run;
}

async function initBackendNow(requested: BackendName | 'auto', opts: InitBackendOptions): Promise<BackendChoice> {
  configureEnv();
  const attempts: BackendAttempt[] = [];

  if (requested !== 'auto') {
    if (!isBackendName(requested)) {
      throw new Error(`unknown tfjs backend '${String(requested)}' (expected auto, ${BACKEND_NAMES.join(', ')})`);
    }
    const previous = engineState().backendName;
    const r = await tryBackend(requested, false, opts);
    attempts.push({ name: requested, ok: r.ok, detail: r.detail });
    if (!r.ok) {
      const now = await restoreUsable(previous === requested ? null : previous);
      throw new Error(`tfjs backend '${requested}' is not available: ${r.detail} (tfjs is left on '${now}')`);
    }
    return withAdapter({ name: requested, reason: 'requested explicitly', attempts }, r);
  }

  for (const name of BACKEND_NAMES) {
    const r = await tryBackend(name, true, opts);
    attempts.push({ name, ok: r.ok, detail: r.detail });
    if (r.ok) {
      const before = attempts.filter((a) => !a.ok).map((a) => `${a.name} ${a.detail.startsWith('skipped') ? 'skipped' : 'unavailable'}`);
      const reason = before.length ? `auto: ${before.join(', ')}` : 'auto: first choice';
      return withAdapter({ name, reason, attempts }, r);
    }
  }
  // cpu is built into @tensorflow/tfjs; reaching here means tfjs itself is broken.
  throw new Error(`no tfjs backend works: ${attempts.map((a) => `${a.name}: ${a.detail}`).join('; ')}`);
}

function withAdapter(choice: BackendChoice, r: TryResult): BackendChoice {
  if (choice.name === 'webgpu') {
    if (r.adapter !== undefined) choice.adapter = r.adapter;
    if (r.software !== undefined) choice.software = r.software;
  }
  return choice;
}

/** One line for logs and run metadata, e.g. "tfjs backend webgpu (llvmpipe..., software): requested explicitly". */
export function describeBackend(choice: BackendChoice): string {
  const extra = choice.name === 'webgpu' && choice.adapter
    ? ` (${choice.adapter}${choice.software ? ', software' : ''})`
    : '';
  const ok = choice.attempts.find((a) => a.name === choice.name && a.ok);
  const det = choice.name === 'wasm' && ok ? ` [${ok.detail}]` : '';
  return `tfjs backend ${choice.name}${extra}${det}: ${choice.reason}`;
}

/** The active tfjs backend name (tf.getBackend() without initialising anything). */
export function activeBackend(): string | null {
  return engineState().backendName;
}
