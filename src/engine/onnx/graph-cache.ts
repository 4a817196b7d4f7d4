import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../util/fs.js';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Graph } from './graph.js';
import type { OrtRunner } from './runner.js';

/**
 * Compiled graphs keyed by a hash of what they are made from: the description the caller gives
 * (model kind, parameter shapes, trainable set, optimizer constants, batch shapes, graph variant)
 * and the code that records them (the model definitions, this compiler, the optimizer), so an
 * edited layer never meets a stale graph. With a directory, graphs are also kept on disk as
 * `<key>.onnx` (what InferenceSession.create reads; also handy to open in Netron).
 */

let codeHash: string | undefined;

/** Hash of the compiled sources a graph depends on (read once per process). */
function sourceHash(): string {
  if (codeHash) return codeHash;
  const here = dirname(fileURLToPath(import.meta.url));
  const h = createHash('sha256');
  const files = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.js')).sort().map((n) => join(dir, n));
  for (const f of [...files(here), ...files(join(here, '../../model')), join(here, '../../train/adam.js')]) h.update(relative(here, f)).update(readFileSync(f));
  codeHash = h.digest('hex');
  return codeHash;
}

export function graphKey(description: unknown): string {
  return createHash('sha256').update(JSON.stringify(description)).update(sourceHash()).digest('hex').slice(0, 24);
}

/** Graphs as onnxruntime sessions: each key compiled (or read from disk) and loaded once. */
export class GraphSessions {
  private loaded = new Map<string, Promise<void>>();

  /** @param dir where compiled graphs are kept between runs; memory only when absent. */
  constructor(private readonly dir?: string) {}

  /**
   * @param opts.disk false keeps this graph off the disk cache: graphs with weights baked in
   * (tower-graphs.ts), which are megabytes and keyed by shapes, not by the weights' values.
   */
  ensure(runner: OrtRunner, key: string, build: () => Graph, opts: { disk?: boolean } = {}): Promise<void> {
    let p = this.loaded.get(key);
    if (!p) {
      p = this.load(runner, key, build, opts.disk ?? true);
      // A failed compile is not remembered: the next call reports the error again.
      p.catch(() => this.loaded.delete(key));
      this.loaded.set(key, p);
    }
    return p;
  }

  clear(): void {
    this.loaded.clear();
  }

  private async load(runner: OrtRunner, key: string, build: () => Graph, disk: boolean): Promise<void> {
    const file = this.dir && disk ? join(this.dir, `${key}.onnx`) : null;
    if (file) {
      let cached: Uint8Array | null = null;
      try {
        cached = readFileSync(file);
      } catch {
        /* not cached yet */
      }
      if (cached) {
        try {
          return await runner.load(key, cached);
        } catch {
          /* a truncated or foreign file: rebuild it below */
        }
      }
    }
    const bytes = build().toBytes(key);
    if (file) {
      mkdirSync(this.dir!, { recursive: true });
      // Atomic, so a concurrent reader never sees half a file.
      await writeFileAtomic(file, bytes);
    }
    await runner.load(key, bytes);
  }
}
