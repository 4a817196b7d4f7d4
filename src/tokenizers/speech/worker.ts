// A speech worker thread: reads audio, computes features and finds nearest centroids (onnxruntime,
// one intra-op thread), so `zipper tokenize` uses every core and the main thread keeps its progress
// bar. Messages are defined in pool.ts.
import { parentPort } from 'node:worker_threads';
import { readAudio, resample, type Audio } from '../../data/audio.js';
import type { NearestSearch, Vectors } from './kmeans.js';
import { ortSearch } from './nearest.js';
import type { EncodedItem, Item, ItemResult, WorkerRequest, WorkerResponse } from './pool.js';
import { SpeechTokenizer, poolPart } from './tokenizer.js';

let search: NearestSearch | null = null;
let tokenizer: SpeechTokenizer | null = null;
/** Rows kept for repeated searches (k-means passes the same sample every iteration). */
let resident: Vectors | null = null;
/** Summed over every codebook this worker has used. */
const stats = { rows: 0, rechecked: 0, scanned: 0 };

async function useCodebook(codebook: Float32Array, k: number, dim: number): Promise<void> {
  search?.dispose();
  search = null;
  search = await ortSearch(codebook, k, dim, 1, stats);
}

/** The item's samples at `rate`: resampled when allowed, else an error naming the file. */
function load(item: Item, rate: number, allowResample: boolean): Audio & { resampled: boolean } {
  const a = readAudio(item.file);
  if (a.sampleRate === rate) return { ...a, resampled: false };
  if (!allowResample) throw new Error(`${item.file}: sample rate ${a.sampleRate} Hz, but the speech tokenizer expects ${rate} Hz`);
  return { samples: resample(a.samples, a.sampleRate, rate), sampleRate: rate, resampled: true };
}

async function each<T>(items: Item[], fn: (item: Item) => Promise<{ value: T; resampled: boolean }> | { value: T; resampled: boolean }): Promise<ItemResult<T>[]> {
  const out: ItemResult<T>[] = [];
  for (const item of items) {
    try {
      const r = await fn(item);
      out.push({ ok: true, value: r.value, resampled: r.resampled });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      out.push({ ok: false, error: msg.includes(item.file) ? msg : `${item.file}: ${msg}` });
    }
  }
  return out;
}

async function handle(r: WorkerRequest): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (r.type) {
    case 'codebook':
      await useCodebook(r.codebook, r.k, r.dim);
      return { result: null, transfer: [] };
    case 'tokenizer':
      tokenizer = SpeechTokenizer.fromJSON(r.json, r.source);
      await useCodebook(tokenizer.codebook, tokenizer.k, tokenizer.dim);
      return { result: null, transfer: [] };
    case 'rows':
      resident = { data: r.data, n: r.n, dim: r.dim };
      return { result: null, transfer: [] };
    case 'nearest': {
      if (!search || !resident) throw new Error('no codebook or rows loaded');
      const units = new Int32Array(resident.n);
      const scores = new Float64Array(resident.n);
      await search.nearest(resident, units, scores);
      return { result: { units, scores }, transfer: [units.buffer, scores.buffer] };
    }
    case 'pool': {
      const parts = await each(r.items, (item) => {
        const a = load(item, r.config.mel.sample_rate, r.resample);
        return { value: poolPart(r.config, a.samples, a.sampleRate, item.id, r.keep, r.seed, item.file), resampled: a.resampled };
      });
      const transfer = parts.flatMap((p) => (p.ok ? [p.value.vectors.buffer as ArrayBuffer] : []));
      return { result: parts, transfer };
    }
    case 'encode': {
      if (!tokenizer || !search) throw new Error('no tokenizer loaded');
      const tk = tokenizer;
      // Features of the whole batch first, then one search over all its rows: the search runs
      // blocks of a fixed size, and one utterance alone would leave most of its last block empty.
      const feats = await each(r.items, (item) => {
        const a = load(item, tk.config.mel.sample_rate, r.resample);
        return { value: { x: tk.features(a.samples, a.sampleRate, item.file), seconds: a.samples.length / a.sampleRate }, resampled: a.resampled };
      });
      const total = feats.reduce((n, f) => n + (f.ok ? f.value.x.n : 0), 0);
      const data = new Float32Array(total * tk.dim);
      let row = 0;
      for (const f of feats) {
        if (!f.ok) continue;
        data.set(f.value.x.data, row * tk.dim);
        row += f.value.x.n;
      }
      const units = new Int32Array(total);
      await search.nearest({ data, n: total, dim: tk.dim }, units);
      const results: ItemResult<EncodedItem>[] = [];
      let at = 0;
      for (const f of feats) {
        if (!f.ok) {
          results.push(f);
          continue;
        }
        results.push({ ok: true, value: { units: units.slice(at, at + f.value.x.n), seconds: f.value.seconds }, resampled: f.resampled });
        at += f.value.x.n;
      }
      const transfer = results.flatMap((p) => (p.ok ? [p.value.units.buffer as ArrayBuffer] : []));
      return { result: results, transfer };
    }
    case 'stats':
      return { result: { ...stats }, transfer: [] };
  }
}

parentPort!.on('message', (r: WorkerRequest) => {
  handle(r).then(
    ({ result, transfer }) => parentPort!.postMessage({ id: r.id, ok: true, result } satisfies WorkerResponse, transfer),
    (e: unknown) => parentPort!.postMessage({ id: r.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies WorkerResponse),
  );
});
