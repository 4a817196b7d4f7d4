/**
 * WebGPU for TensorFlow.js in Node, through the `webgpu` npm package (Dawn's node bindings).
 *
 * Only `backends.ts` should call into this module. It finds a WebGPU adapter (Vulkan first, then
 * OpenGL ES on Mesa, see ENGINE.md), installs `navigator.gpu` and Dawn's globals, imports
 * `@tensorflow/tfjs-backend-webgpu` and registers a `webgpu` backend factory that uses the adapter
 * path that worked. Nothing here throws: failures come back as a probe with `ok: false`.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';

export type WebGpuPath = 'vulkan' | 'opengles' | 'native';

export interface WebGpuPathAttempt {
  path: WebGpuPath;
  ok: boolean;
  detail: string;
}

export interface WebGpuProbe {
  ok: boolean;
  /** The adapter path that produced an adapter. */
  path?: WebGpuPath;
  /** Adapter name (adapter.info.device, else description / vendor). */
  adapter?: string;
  /** adapter.info.description (driver string), where Dawn gives one. */
  description?: string;
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader...) or a fallback adapter. */
  software?: boolean;
  /** One line: why not, or what was found. */
  detail: string;
  tried: WebGpuPathAttempt[];
}

/* Minimal structural types for the parts of the WebGPU API used here (the `webgpu` package's own
 * types pull in @webgpu/types globals; keeping this local avoids depending on them). */
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestAdapterInfo?: () => Promise<AdapterInfoLike>;
  requestDevice(desc?: unknown): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(opts?: Record<string, unknown>): Promise<AdapterLike | null>;
}
interface WebgpuModule {
  create(options: string[]): GpuLike;
  globals: object;
}

const SOFTWARE_RE = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|warp/i;

/** True for the names CPU rasterisers give their adapters. */
export function isSoftwareAdapterName(name: string | undefined): boolean {
  return !!name && SOFTWARE_RE.test(name);
}

interface Selected {
  gpu: GpuLike;
  path: WebGpuPath;
  adapterOptions: Record<string, unknown>;
  /** The probe's adapter, not yet used for a device: the first backend init takes it. */
  spare?: AdapterLike;
}

let probePromise: Promise<WebGpuProbe> | undefined;
let selected: Selected | undefined;
let backendModulePromise: Promise<{ WebGPUBackend: new (device: unknown, info?: unknown) => tf.KernelBackend }> | undefined;

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n')[0] ?? '').trim().slice(0, 300);
}

/** Whether the dynamic loader can find `lib` (from /etc/ld.so.cache or LD_LIBRARY_PATH). */
export function sharedLibFound(lib: string): boolean {
  try {
    // Names are NUL-terminated there: 'libEGL.so' must not match 'libEGL.so.1'.
    if (fs.readFileSync('/etc/ld.so.cache').includes(Buffer.from(`${lib}\0`))) return true;
  } catch {
    /* no cache: look in the usual places */
  }
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib', '/usr/local/lib',
  ];
  return dirs.some((d) => {
    try {
      return fs.existsSync(`${d}/${lib}`);
    } catch {
      return false;
    }
  });
}

function adapterName(info: AdapterInfoLike | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.device, info.description, [info.vendor, info.architecture].filter(Boolean).join(' ')];
  return parts.find((p) => p && p.trim())?.trim() ?? 'unknown adapter';
}

async function adapterInfoOf(adapter: AdapterLike): Promise<AdapterInfoLike | undefined> {
  if (adapter.info) return adapter.info;
  if (typeof adapter.requestAdapterInfo === 'function') {
    try {
      return await adapter.requestAdapterInfo();
    } catch {
      return undefined;
    }
  }
  return undefined;
}

let webgpuModule: Promise<WebgpuModule> | undefined;
function loadWebgpuModule(): Promise<WebgpuModule> {
  webgpuModule ??= import('webgpu') as unknown as Promise<WebgpuModule>;
  return webgpuModule;
}

async function tryPath(mod: WebgpuModule, path: WebGpuPath): Promise<
  { ok: true; sel: Selected; info: AdapterInfoLike | undefined; fallback: boolean } | { ok: false; detail: string }
> {
  let options: string[] = [];
  let adapterOptions: Record<string, unknown> = {};
  if (path === 'vulkan') {
    if (!sharedLibFound('libvulkan.so.1')) {
      return { ok: false, detail: 'libvulkan.so.1 not found (no Vulkan loader/driver installed)' };
    }
    options = ['backend=vulkan'];
  } else if (path === 'opengles') {
    // dawn.node dlopens the unversioned 'libEGL.so', which Debian ships only in libegl-dev.
    if (!sharedLibFound('libEGL.so')) {
      const hint = sharedLibFound('libEGL.so.1') ? 'libEGL.so.1 is there but Dawn loads the unversioned libEGL.so: install libegl-dev'
        : 'install libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri (see .ci/mesa.sh)';
      return { ok: false, detail: `libEGL.so not found (${hint})` };
    }
    // Mesa needs a display-less EGL platform on a headless machine; Dawn's GLES backend only
    // offers compatibility-mode adapters.
    process.env.EGL_PLATFORM ??= 'surfaceless';
    options = ['backend=opengles'];
    adapterOptions = { featureLevel: 'compatibility' };
  }
  let gpu: GpuLike;
  try {
    gpu = mod.create(options);
  } catch (e) {
    return { ok: false, detail: `create(${JSON.stringify(options)}) threw: ${firstLine(e)}` };
  }
  let adapter: AdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...adapterOptions });
  } catch (e) {
    return { ok: false, detail: `requestAdapter threw: ${firstLine(e)}` };
  }
  if (!adapter) {
    const hint = path === 'vulkan'
      ? ' (Mesa older than ~23 lacks what Dawn needs; on Debian 12 use mesa-vulkan-drivers from bookworm-backports)'
      : path === 'opengles' && process.env.EGL_PLATFORM !== 'surfaceless'
        ? ` (EGL_PLATFORM=${process.env.EGL_PLATFORM}; a headless machine needs EGL_PLATFORM=surfaceless)`
        : '';
    return { ok: false, detail: `requestAdapter returned null${hint}` };
  }
  const info = await adapterInfoOf(adapter);
  const fallback = !!(info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
  return { ok: true, sel: { gpu, path, adapterOptions, spare: adapter }, info, fallback };
}

/**
 * Find a WebGPU adapter once per process (the result is cached). Linux: Vulkan, then OpenGL ES
 * (Mesa); elsewhere Dawn's default backend. Sets LP_NUM_THREADS=1 when unset (llvmpipe/lavapipe
 * on few shared cores). Never throws.
 */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probePromise ??= (async (): Promise<WebGpuProbe> => {
    process.env.LP_NUM_THREADS ??= '1';
    let mod: WebgpuModule;
    try {
      mod = await loadWebgpuModule();
    } catch (e) {
      return { ok: false, detail: `cannot load the 'webgpu' package: ${firstLine(e)}`, tried: [] };
    }
    const paths: WebGpuPath[] = process.platform === 'linux' ? ['vulkan', 'opengles'] : ['native'];
    const tried: WebGpuPathAttempt[] = [];
    for (const path of paths) {
      const r = await tryPath(mod, path);
      if (!r.ok) {
        tried.push({ path, ok: false, detail: r.detail });
        continue;
      }
      const name = adapterName(r.info);
      const software = r.fallback || isSoftwareAdapterName(name) || isSoftwareAdapterName(r.info?.description);
      const detail = `${name}${software ? ' (software)' : ''} via ${path}`;
      tried.push({ path, ok: true, detail });
      selected = r.sel;
      return {
        ok: true, path, adapter: name, description: r.info?.description || undefined, software, detail, tried,
      };
    }
    return { ok: false, detail: `no WebGPU adapter: ${tried.map((t) => `${t.path}: ${t.detail}`).join('; ')}`, tried };
  })();
  return probePromise;
}

/** Install `navigator.gpu` (wrapped so every requestAdapter gets the path's options) and Dawn's globals. */
function installGlobals(mod: WebgpuModule, sel: Selected): void {
  Object.assign(globalThis, mod.globals);
  const wrapped: GpuLike & Record<string, unknown> = {
    requestAdapter: (opts?: Record<string, unknown>) => sel.gpu.requestAdapter({ ...(opts ?? {}), ...sel.adapterOptions }),
    getPreferredCanvasFormat: () => 'rgba8unorm',
    get wgslLanguageFeatures() {
      return (sel.gpu as unknown as { wgslLanguageFeatures?: unknown }).wgslLanguageFeatures;
    },
  };
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  const nav = g.navigator;
  if (nav && typeof nav === 'object') {
    try {
      Object.defineProperty(nav, 'gpu', { value: wrapped, configurable: true, writable: true });
    } catch {
      /* replaced below */
    }
  }
  if (g.navigator?.gpu !== wrapped) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: wrapped }, configurable: true, writable: true });
  }
}

/**
 * Make sure a `webgpu` backend factory using the probed adapter path is registered with tfjs.
 * Call only after probeWebGpu() returned ok. Registered with priority 0 so tfjs never picks it
 * on its own: backends.ts always sets the backend explicitly.
 */
export async function registerWebGpuBackend(): Promise<void> {
  const probe = await probeWebGpu();
  if (!probe.ok || !selected) throw new Error(probe.detail);
  const sel = selected;
  const mod = await loadWebgpuModule();
  installGlobals(mod, sel);
  if (!backendModulePromise) {
    // Globals must exist before this import (the package checks navigator.gpu when loaded).
    backendModulePromise = import('@tensorflow/tfjs-backend-webgpu') as unknown as typeof backendModulePromise;
    await backendModulePromise;
    // The package registers its own factory (priority 3, plain requestAdapter); replace it.
    // (Not tf.findBackend: that would initialise it.)
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  }
  const { WebGPUBackend } = await backendModulePromise!;
  if (tf.findBackendFactory('webgpu')) return;
  tf.registerBackend('webgpu', async () => {
    // An adapter serves one device; Dawn's GLES path prints two limit warnings per adapter.
    const adapter = sel.spare ?? await sel.gpu.requestAdapter({ powerPreference: 'high-performance', ...sel.adapterOptions });
    sel.spare = undefined;
    if (!adapter) throw new Error(`WebGPU adapter (${sel.path}) disappeared`);
    const requiredFeatures: string[] = [];
    if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
    return new WebGPUBackend(device, await adapterInfoOf(adapter));
  }, 0);
}

/** Set the webgpu flags (only possible once the backend package has registered them). */
export function setWebGpuFlags(): void {
  try {
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  } catch {
    /* flag not registered: package not loaded */
  }
}
