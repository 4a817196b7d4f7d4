// Speech worker threads (worker.ts) seen from the main thread: audio items are handed out in
// batches to whichever worker is free, results come back in item order whatever the scheduling, so
// the output never depends on the number of workers.
import { Worker } from 'node:worker_threads';
import type { SpeechTokenizerConfig } from '../../config/speech-schema.js';
import type { NearestSearch, SearchFactory, Vectors } from './kmeans.js';
import type { OrtSearchStats } from './nearest.js';
import type { PoolPart } from './tokenizer.js';

/** One audio file to process. */
export interface Item {
  id: string;
  /** Absolute path. */
  file: string;
  /** From the manifest; only used to size batches. */
  seconds?: number;
}

/** A failed item's error names its file; `resampled` marks a file read at another sample rate. */
export type ItemResult<T> = { ok: true; value: T; resampled: boolean } | { ok: false; error: string };

export interface EncodedItem {
  /** Units without the id offset. */
  units: Int32Array;
  seconds: number;
}

export type WorkerRequest = { id: number } & (
  | { type: 'codebook'; codebook: Float32Array; k: number; dim: number }
  | { type: 'tokenizer'; json: string; source: string }
  /** Keep these rows in the worker for later 'nearest' calls without data. */
  | { type: 'rows'; data: Float32Array; n: number; dim: number }
  | { type: 'nearest' }
  | { type: 'pool'; config: SpeechTokenizerConfig; items: Item[]; keep: number; seed: number; resample: boolean }
  | { type: 'encode'; items: Item[]; resample: boolean }
  | { type: 'stats' }
);

export type WorkerResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

type Body = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** A batch is cut at this many seconds of audio (or BATCH_ITEMS items): small enough to balance two workers. */
const BATCH_SECONDS = 60;
const BATCH_ITEMS = 32;

class Thread {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private broken: Error | null = null;

  constructor(readonly worker: Worker) {
    worker.on('message', (m: WorkerResponse) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`speech worker exited with code ${code}`)));
  }

  call(body: Body, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }

  private fail(e: Error): void {
    this.broken ??= new Error(`speech worker failed: ${e.message}`);
    for (const p of this.pending.values()) p.reject(this.broken);
    this.pending.clear();
  }
}

export class SpeechPool {
  private closed = false;
  /** The vectors the workers hold for 'nearest' (kmeans passes the same ones every iteration). */
  private resident: Float32Array | null = null;
  private residentSplit: number[] = [];

  private constructor(private readonly threads: Thread[]) {}

  static start(workers: number): SpeechPool {
    // Workers inherit execArgv; --input-type (node -e scripts) would stop them from starting.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const url = new URL('./worker.js', import.meta.url);
    return new SpeechPool(Array.from({ length: Math.max(1, workers) }, () => new Thread(new Worker(url, { execArgv }))));
  }

  get size(): number {
    return this.threads.length;
  }

  /** Every worker loads the tokenizer (and its codebook) for 'encode'. */
  async loadTokenizer(json: string, source: string): Promise<void> {
    await Promise.all(this.threads.map((t) => t.call({ type: 'tokenizer', json, source })));
  }

  /** A search for kmeans(): rows are split over the workers, which keep them between iterations. */
  search(): SearchFactory {
    return async (codebook, k, dim): Promise<NearestSearch> => {
      await Promise.all(this.threads.map((t) => t.call({ type: 'codebook', codebook, k, dim })));
      return {
        name: `onnxruntime x ${this.threads.length} workers`,
        nearest: (x, units, scores) => this.nearest(x, units, scores),
        dispose() {},
      };
    };
  }

  private async nearest(x: Vectors, units: Int32Array, scores?: Float64Array): Promise<void> {
    if (this.resident !== x.data) {
      const per = Math.ceil(x.n / this.threads.length);
      this.residentSplit = this.threads.map((_, w) => Math.min(x.n, w * per));
      await Promise.all(
        this.threads.map((t, w) => {
          const from = this.residentSplit[w]!;
          const to = Math.min(x.n, from + per);
          const data = x.data.slice(from * x.dim, to * x.dim);
          return t.call({ type: 'rows', data, n: to - from, dim: x.dim }, [data.buffer]);
        }),
      );
      this.resident = x.data;
    }
    const parts = (await Promise.all(this.threads.map((t) => t.call({ type: 'nearest' })))) as { units: Int32Array; scores: Float64Array }[];
    parts.forEach((p, w) => {
      units.set(p.units, this.residentSplit[w]!);
      scores?.set(p.scores, this.residentSplit[w]!);
    });
  }

  /** Frees the rows the workers keep for k-means (150k vectors are about 200 MB). */
  async releaseRows(): Promise<void> {
    if (!this.resident) return;
    this.resident = null;
    await Promise.all(this.threads.map((t) => t.call({ type: 'rows', data: new Float32Array(0), n: 0, dim: 0 })));
  }

  /** Training-pool parts of the items, in item order. */
  poolParts(items: readonly Item[], config: SpeechTokenizerConfig, keep: number, seed: number, resample: boolean, onBatch?: (done: number) => void): Promise<ItemResult<PoolPart>[]> {
    return this.map(items, (batch) => ({ type: 'pool', config, items: batch, keep, seed, resample }), onBatch);
  }

  /**
   * Units of the items with the loaded tokenizer, in item order. `resample`: read a file at another
   * sample rate resampled, rather than failing it.
   */
  encode(items: readonly Item[], resample: boolean, onBatch?: (done: number) => void): Promise<ItemResult<EncodedItem>[]> {
    return this.map(items, (batch) => ({ type: 'encode', items: batch, resample }), onBatch);
  }

  /** The workers' search statistics, summed. */
  async stats(): Promise<OrtSearchStats> {
    const all = (await Promise.all(this.threads.map((t) => t.call({ type: 'stats' })))) as OrtSearchStats[];
    return all.reduce((a, s) => ({ rows: a.rows + s.rows, rechecked: a.rechecked + s.rechecked, scanned: a.scanned + s.scanned }), { rows: 0, rechecked: 0, scanned: 0 });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.threads) void t.worker.terminate();
  }

  private async map<T>(items: readonly Item[], request: (batch: Item[]) => Body, onBatch?: (done: number) => void): Promise<ItemResult<T>[]> {
    const batches: { from: number; items: Item[] }[] = [];
    for (let i = 0; i < items.length; ) {
      const from = i;
      let seconds = 0;
      while (i < items.length && i - from < BATCH_ITEMS && (i === from || seconds < BATCH_SECONDS)) seconds += items[i++]!.seconds ?? 10;
      batches.push({ from, items: items.slice(from, i) });
    }
    const out = new Array<ItemResult<T>>(items.length);
    let next = 0;
    let done = 0;
    await Promise.all(
      this.threads.map(async (t) => {
        while (next < batches.length) {
          const b = batches[next++]!;
          const results = (await t.call(request(b.items))) as ItemResult<T>[];
          results.forEach((r, j) => (out[b.from + j] = r));
          done += b.items.length;
          onBatch?.(done);
        }
      }),
    );
    return out;
  }
}
