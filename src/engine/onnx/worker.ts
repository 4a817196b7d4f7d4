/**
 * The onnxruntime side of OrtRunner, in a worker thread: session.run occupies its thread while it
 * computes (ENGINE.md), so it runs here and the main thread keeps its progress bars and signals.
 * The worker also keeps the large state (parameters, Adam moments, KV caches) in named slots, so a
 * training step sends only the batch and gets back two numbers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Request, Response, WireTensor } from './protocol.js';

// Before the first session: the environment's logger is created once, at that point. 'fatal'
// also hides the provider bridge's error line when CUDA's libraries are absent.
ort.env.logLevel = 'fatal';

const { threads } = workerData as { threads: number };
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
        logSeverityLevel: 3,
        logVerbosityLevel: 0,
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

async function run(r: Extract<Request, { type: 'run' }>): Promise<Record<string, WireTensor>> {
  const s = sessions.get(r.key);
  if (!s) throw new Error(`no session "${r.key}" in the onnxruntime worker`);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(r.feeds)) feeds[k] = toOrt(t);
  for (const [input, slot] of Object.entries(r.slotFeeds)) {
    const t = slots.get(slot);
    if (!t) throw new Error(`slot "${slot}" is empty (load state first)`);
    feeds[input] = t;
  }
  const out = await s.run(feeds);
  for (const k of [...Object.keys(r.store), ...r.fetch]) if (!out[k]) throw new Error(`graph "${r.key}" has no output "${k}"`);
  for (const [output, slot] of Object.entries(r.store)) slots.set(slot, out[output]!);
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

parentPort!.on('message', (r: Request) => {
  handle(r).then(
    (result) => parentPort!.postMessage({ id: r.id, ok: true, result } satisfies Response),
    (e: unknown) => parentPort!.postMessage({ id: r.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Response),
  );
});
