/**
 * The PyTorch peer (scripts/torch_peer.py) as a long-lived child process: JSON lines both ways,
 * so alternating rounds pay Python's and torch's start-up once. Debian's /usr/bin/python3 with
 * python3-torch (OpenBLAS), OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for it (ENGINE.md), and
 * one thread everywhere (torch.set_num_threads(1), OMP/OpenBLAS pools of one).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TowerShape } from '../../src/config/schema.js';
import type { HostBatch } from '../../src/engine/engine.js';
import { towerSpecs } from '../../src/model/tower.js';
import { projectRoot } from '../../src/cli/common.js';
import { BATCH, SEQ } from './common.js';

export const PYTHON = '/usr/bin/python3';

export function peerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** The weights as one float32 file in spec order, for the peer to load (same weights as ours). */
export function writeWeights(dir: string, tag: string, shape: TowerShape, weights: ReadonlyMap<string, Float32Array>): { path: string; specs: [string, number[]][] } {
  const specs = towerSpecs(shape);
  const total = specs.reduce((n, s) => n + weights.get(s.name)!.length, 0);
  const flat = new Float32Array(total);
  let off = 0;
  for (const s of specs) {
    flat.set(weights.get(s.name)!, off);
    off += weights.get(s.name)!.length;
  }
  const path = join(dir, `weights-${tag}.f32`);
  writeFileSync(path, new Uint8Array(flat.buffer));
  return { path, specs: specs.map((s) => [s.name, [...s.shape]]) };
}

export class TorchPeer {
  private lines: AsyncIterator<string>;
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly version: string,
    private readonly stderr: string[],
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }

  /** Starts the peer; throws with the reason (no python3, no torch) if it cannot. */
  static async start(): Promise<TorchPeer> {
    const child = spawn(PYTHON, [join(projectRoot(), 'scripts', 'torch_peer.py')], { env: peerEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    child.stderr.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
    const failed = new Promise<never>((_, reject) => child.on('error', reject));
    failed.catch(() => undefined);
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), failed]);
    if (first.done) {
      const err = stderr.join('').trim().split('\n').pop() || 'exited at start';
      throw new Error(/No module named 'torch'/.test(err) ? 'python3-torch not installed' : err);
    }
    const hello = JSON.parse(first.value) as { torch: string; threads: number };
    return new TorchPeer(child, `${hello.torch}, ${hello.threads} thread`, stderr, lines);
  }

  async call<R>(req: Record<string, unknown>): Promise<R> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error(`the PyTorch peer exited: ${this.stderr.join('').trim().split('\n').pop() ?? ''}`);
    const res = JSON.parse(r.value) as R & { error?: string };
    if (res.error) throw new Error(`PyTorch peer, ${String(req.cmd)}: ${res.error}`);
    return res;
  }

  /** A model `name` with our weights and batch (the peer keeps a training copy and an inference copy). */
  async setup(name: string, shape: TowerShape, weights: { path: string; specs: [string, number[]][] }, batch: HostBatch): Promise<void> {
    await this.call({
      cmd: 'setup', name, d_model: shape.d_model, n_layers: shape.n_layers, n_heads: shape.n_heads, ff_mult: shape.ff_mult,
      seq_len: SEQ, vocab: shape.vocab_size, batch: BATCH, weights: weights.path, specs: weights.specs,
      ids: Array.from(batch.ids!.data), targets: Array.from(batch.targets!.data),
    });
  }

  async rss(): Promise<{ rss_mb: number; maxrss_mb: number }> {
    return this.call({ cmd: 'rss' });
  }

  close(): void {
    this.child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    const t = setTimeout(() => this.child.kill(), 2000);
    t.unref();
  }
}
