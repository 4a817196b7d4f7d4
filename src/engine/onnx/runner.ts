import { existsSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Emitter } from './emit.js';
import { Graph } from './graph.js';
import type { Request, Response, SlotResize, SlotWrite, WireTensor } from './protocol.js';

/**
 * onnxruntime sessions in a worker thread (worker.ts), with execution providers tried in order:
 * onnxruntime does not fall back by itself (ENGINE.md: a missing CUDA throws), so each provider is
 * tried on a one-node probe graph, every attempt is recorded, and the first that loads and runs
 * becomes the runner's device.
 */

export type ProviderName = 'cuda' | 'webgpu' | 'cpu';
export const DEFAULT_PROVIDERS: readonly ProviderName[] = ['cuda', 'webgpu', 'cpu'];

export interface ProviderAttempt {
  provider: string;
  ok: boolean;
  detail: string;
}

export interface RunnerOptions {
  /** Tried in order; default cuda, webgpu, cpu. */
  providers?: readonly ProviderName[];
  /** Intra-op threads per session; 1 by default (ENGINE.md: 2 were slower on 2 shared cores). */
  intraOpNumThreads?: number;
  /**
   * onnxruntime's per-session CPU memory arena (default on). Each session's arena keeps its peak
   * and never shrinks, so a model compiled for many batch shapes (fine-tuning's length buckets)
   * holds the sum of every shape's peak: 3.8 GB for 6 zipper shapes, against 0.6 GB without an
   * arena (npm run bench measures what it costs in speed).
   */
  memoryArena?: boolean;
}

export interface RunSpec {
  feeds?: Record<string, WireTensor>;
  slotFeeds?: Record<string, string>;
  store?: Record<string, string>;
  fetch?: string[];
  /** Slots resized (zero-filled, prefix kept) before the run. */
  resize?: Record<string, SlotResize>;
  /** Outputs written into slots in place after the run. */
  write?: Record<string, SlotWrite>;
}

/**
 * Providers worth trying in a fallback list: webgpu only where a GPU device node and
 * Vulkan exist (Dawn would otherwise pick a CPU rasteriser, slower than the cpu provider, or print
 * a warning on stderr that no log level silences).
 */
async function implausible(p: ProviderName): Promise<string | null> {
  if (p !== 'webgpu') return null;
  const dri = existsSync('/dev/dri') && readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  if (!dri && !existsSync('/dev/nvidia0')) return 'skipped: no GPU device (/dev/dri/renderD*, /dev/nvidia0)';
  // Imported only here: webgpu.ts loads TensorFlow.js, which a CPU-only ort process never needs.
  const { sharedLibFound } = await import('../webgpu.js');
  if (!sharedLibFound('libvulkan.so.1')) return 'skipped: libvulkan.so.1 not found';
  return null;
}

export class OrtRunner {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private providers: string[] = [];
  readonly attempts: ProviderAttempt[] = [];
  private closed = false;
  /** Why the worker died, once it has: every later call fails with this. */
  private broken: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: Response) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (!this.pending.size) worker.unref();
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', (code) => this.failAll(new Error(`onnxruntime worker exited with code ${code}`)));
    // Unreferenced while idle: an engine the caller forgot to dispose never keeps the process alive.
    worker.unref();
  }

  /** Starts the worker and picks the execution provider. */
  static async start(opts: RunnerOptions = {}): Promise<OrtRunner> {
    const threads = opts.intraOpNumThreads ?? 1;
    const memoryArena = opts.memoryArena ?? true;
    // Workers inherit the parent's execArgv; --input-type (node -e scripts) makes them fail to start.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const r = new OrtRunner(new Worker(new URL('./worker.js', import.meta.url), { workerData: { threads, memoryArena }, execArgv }));
    try {
      await r.pickProvider(opts.providers);
    } catch (e) {
      r.dispose();
      throw e;
    }
    return r;
  }

  /** The execution provider sessions run on ("cpu", "cuda", "webgpu"). */
  get provider(): string {
    return this.providers[0] ?? 'none';
  }

  private async pickProvider(requested: readonly ProviderName[] | undefined): Promise<void> {
    const list = requested ?? DEFAULT_PROVIDERS;
    const probe = probeGraph();
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      // A provider named alone is tried whatever happens; in a fallback list, hopeless ones are skipped.
      const skip = list.length > 1 ? await implausible(p) : null;
      if (skip) {
        this.attempts.push({ provider: p, ok: false, detail: skip });
        continue;
      }
      try {
        await this.call({ type: 'create', key: '__probe', bytes: probe, providers: [p] });
        const out = (await this.call({ type: 'run', key: '__probe', feeds: { x: { data: Float32Array.of(1, 2), shape: [2] } }, slotFeeds: {}, store: {}, fetch: ['y'] })) as Record<string, WireTensor>;
        if (out.y!.data[1] !== 4) throw new Error(`probe graph computed ${Array.from(out.y!.data)}, expected [2, 4]`);
        await this.call({ type: 'drop', key: '__probe' });
        this.attempts.push({ provider: p, ok: true, detail: 'ok' });
        this.providers = list.slice(i);
        return;
      } catch (e) {
        if (this.broken) throw this.broken;
        this.attempts.push({ provider: p, ok: false, detail: (e as Error).message.replace(/^no execution provider could load graph __probe: \w+: /, '') });
      }
    }
    throw new Error(`no onnxruntime execution provider works: ${this.attempts.map((a) => `${a.provider}: ${a.detail}`).join('; ')}`);
  }

  /** Loads a graph as session `key` (on the chosen provider, falling back along the list). */
  async load(key: string, bytes: Uint8Array): Promise<void> {
    const r = (await this.call({ type: 'create', key, bytes, providers: this.providers })) as { provider: string; attempts: ProviderAttempt[] };
    for (const a of r.attempts) if (!a.ok) this.attempts.push({ ...a, detail: `graph ${key}: ${a.detail}` });
    // A provider that could not take this graph is not offered the next ones either.
    this.providers = this.providers.slice(this.providers.indexOf(r.provider));
  }

  async run(key: string, spec: RunSpec): Promise<Record<string, WireTensor>> {
    return (await this.call({ type: 'run', key, feeds: spec.feeds ?? {}, slotFeeds: spec.slotFeeds ?? {}, store: spec.store ?? {}, fetch: spec.fetch ?? [], ...(spec.resize ? { resize: spec.resize } : {}), ...(spec.write ? { write: spec.write } : {}) })) as Record<string, WireTensor>;
  }

  async setSlot(name: string, tensor: WireTensor): Promise<void> {
    await this.call({ type: 'setSlot', name, tensor });
  }

  async getSlot(name: string): Promise<WireTensor> {
    return (await this.call({ type: 'getSlot', name })) as WireTensor;
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }

  private call(req: Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the onnxruntime worker was disposed'));
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...req, id });
    });
  }

  private failAll(e: Error): void {
    if (!this.closed) this.broken ??= new Error(`onnxruntime worker failed: ${e.message}`);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** y = x + x on a [2] input: checks a provider loads and runs a graph. */
function probeGraph(): Uint8Array {
  const g = new Graph();
  const x = g.input('x', [2], 'float32');
  g.output(new Emitter(g).add(x, x), 'y');
  return g.toBytes('probe');
}
