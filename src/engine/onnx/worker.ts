/**
 * The onnxruntime side of OrtRunner, in a worker thread: session.run occupies its thread while it
 * computes (ENGINE.md), so it runs here and the main thread keeps its progress bars and signals.
 * The worker also keeps the large state (parameters, Adam moments, KV caches) in named slots, so a
 * training step sends only the batch and gets back two numbers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Request, Response, SlotResize, SlotWrite, WireTensor } from './protocol.js';

// Before the first session: the environment's logger is created once, at that point. 'fatal'
// also hides the provider bridge's error line when CUDA's libraries are absent.
ort.env.logLevel = 'fatal';

const { threads, memoryArena } = workerData as { threads: number; memoryArena: boolean };
const sessions = new Map<string, ort.InferenceSession>();
const slots = new Map<string, ort.Tensor>();

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n').find((l) => l.trim()) ?? '').trim().slice(0, 300);
}

const toOrt = (t: WireTensor) => new ort.Tensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape);

async function create(key: string, bytes: Uint8Array, providers: string[]) {
  const attempts: { provider: string; ok: boolean; detail: string }[] = [];
  for (const p of providers) {
    try {
      const s = await ort.InferenceSession.create(bytes, {
        executionProviders: [p],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        enableCpuMemArena: memoryArena,
        logSeverityLevel: 3,
        logVerbosityLevel: 0,
        // onnxruntime would fuse a residual Add + LayerNormalization into SkipLayerNormalization,
        // whose CPU kernel took 1.8x as long as the pair on [16, 128, 128] (onnxruntime 1.30).
        extra: { optimization: { disable_specified_optimizers: 'SkipLayerNormFusion' } },
      });
      sessions.get(key)?.release();
      sessions.set(key, s);
      attempts.push({ provider: p, ok: true, detail: 'ok' });
      return { provider: p, attempts };
    } catch (e) {
      attempts.push({ provider: p, ok: false, detail: firstLine(e) });
    }
  }
  throw new Error(`no execution provider could load graph ${key}: ${attempts.map((a) => `${a.provider}: ${a.detail}`).join('; ')}`);
}

const strides = (dims: readonly number[], axis: number) => ({
  outer: dims.slice(0, axis).reduce((a, b) => a * b, 1),
  inner: dims.slice(axis + 1).reduce((a, b) => a * b, 1),
});

function resizeSlot(name: string, r: SlotResize): void {
  let old: ort.Tensor | undefined = slots.get(name);
  // A slot of another shape (a new batch of rows) starts afresh.
  if (old && (old.dims.length !== r.shape.length || old.dims.some((d, i) => i !== r.axis && d !== r.shape[i]))) old = undefined;
  if (old && old.dims[r.axis] === r.size) return;
  const dims = [...(old ? old.dims : r.shape)];
  const had = old ? dims[r.axis]! : 0;
  dims[r.axis] = r.size;
  const { outer, inner } = strides(dims, r.axis);
  const data = new Float32Array(outer * r.size * inner);
  if (old) {
    const src = old.data as Float32Array;
    const keep = Math.min(had, r.size) * inner;
    for (let i = 0; i < outer; i++) data.set(src.subarray(i * had * inner, i * had * inner + keep), i * r.size * inner);
  }
  slots.set(name, new ort.Tensor('float32', data, dims));
}

/** Copies `out` into slot w.slot at w.at along w.axis, in place (the slot keeps its buffer). */
function writeSlot(out: ort.Tensor, w: SlotWrite): void {
  const t = slots.get(w.slot);
  if (!t) throw new Error(`slot "${w.slot}" is empty (resize it first)`);
  const n = out.dims[w.axis]!;
  const size = t.dims[w.axis]!;
  if (out.dims.length !== t.dims.length || out.dims.some((d, i) => i !== w.axis && d !== t.dims[i]) || w.at < 0 || w.at + n > size)
    throw new Error(`cannot write [${out.dims}] into slot "${w.slot}" [${t.dims}] at ${w.at} along axis ${w.axis}`);
  const { outer, inner } = strides(out.dims, w.axis);
  const src = out.data as Float32Array;
  const dst = t.data as Float32Array;
  for (let i = 0; i < outer; i++) dst.set(src.subarray(i * n * inner, (i + 1) * n * inner), (i * size + w.at) * inner);
}

async function run(r: Extract<Request, { type: 'run' }>): Promise<Record<string, WireTensor>> {
  const s = sessions.get(r.key);
  if (!s) throw new Error(`no session "${r.key}" in the onnxruntime worker`);
  for (const [name, z] of Object.entries(r.resize ?? {})) resizeSlot(name, z);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(r.feeds)) feeds[k] = toOrt(t);
  for (const [input, slot] of Object.entries(r.slotFeeds)) {
    const t = slots.get(slot);
    if (!t) throw new Error(`slot "${slot}" is empty (load state first)`);
    feeds[input] = t;
  }
  const out = await s.run(feeds);
  const write = r.write ?? {};
  for (const k of [...Object.keys(r.store), ...Object.keys(write), ...r.fetch]) if (!out[k]) throw new Error(`graph "${r.key}" has no output "${k}"`);
  for (const [output, slot] of Object.entries(r.store)) slots.set(slot, out[output]!);
  for (const [output, w] of Object.entries(write)) writeSlot(out[output]!, w);
  const res: Record<string, WireTensor> = {};
  for (const k of r.fetch) res[k] = { data: out[k]!.data as Float32Array | Int32Array, shape: [...out[k]!.dims] };
  return res;
}

async function handle(r: Request): Promise<unknown> {
  switch (r.type) {
    case 'create':
      return create(r.key, r.bytes, r.providers);
    case 'run':
      return run(r);
    case 'setSlot':
      slots.set(r.name, toOrt(r.tensor));
      return null;
    case 'getSlot': {
      const t = slots.get(r.name);
      if (!t) throw new Error(`slot "${r.name}" is empty`);
      return { data: t.data, shape: [...t.dims] };
    }
    case 'drop':
      sessions.get(r.key)?.release();
      sessions.delete(r.key);
      return null;
  }
}

/**
 * Buffers of fetched outputs that no slot holds, moved to the main thread instead of copied
 * (onnxruntime-node gives each output a fresh array: a forward's logits are megabytes).
 */
function transferable(r: Request, result: unknown): ArrayBuffer[] {
  if (r.type !== 'run' || !result) return [];
  const kept = new Set(Object.keys(r.store));
  const out: ArrayBuffer[] = [];
  for (const [k, t] of Object.entries(result as Record<string, WireTensor>)) {
    const b = t.data.buffer;
    if (kept.has(k) || !(b instanceof ArrayBuffer) || t.data.byteOffset !== 0 || t.data.byteLength !== b.byteLength || out.includes(b)) continue;
    out.push(b);
  }
  return out;
}

parentPort!.on('message', (r: Request) => {
  handle(r).then(
    (result) => {
      const msg = { id: r.id, ok: true, result } satisfies Response;
      const moved = transferable(r, result);
      try {
        parentPort!.postMessage(msg, moved);
      } catch {
        // A buffer that cannot move (onnxruntime's own memory) is copied instead.
        parentPort!.postMessage(msg);
      }
    },
    (e: unknown) => parentPort!.postMessage({ id: r.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Response),
  );
});
