// Nearest-centroid search on onnxruntime: scores |c|^2 - 2 x.c for a block of rows as one float32
// matrix product (MLAS sgemm), the best few per row by TopK, then an exactness check in JS.
//
// Why onnxruntime (scripts/bench/speech-tokens.ts measures it; 1,024 x 320 codebook, one thread):
// about 70 GFLOP/s on an idle core, against about 19 for tfjs-wasm's plain 2-D matMul and 1.5 for
// a JS loop.
//
// Exactness: a float32 product of length `dim` is within (dim + 4) u |x| |c| of the exact one
// (u = 2^-24, any summation order, FMA or not). Every centroid that could be the reference winner
// has a float32 score within twice that bound of the float32 best; we allow four times. When only
// one centroid is in that band it is the reference winner; when a few are, their scores are
// recomputed by the reference formula and the smallest (lowest index on a tie) wins; when the band
// reaches past the TOP_K best, the row goes through the full reference scan. The winner's score is
// always recomputed by the reference formula. So units and scores equal nearestScan's bit for bit,
// on any machine.
import { createRequire } from 'node:module';
import { Emitter } from '../../engine/onnx/emit.js';
import { Graph } from '../../engine/onnx/graph.js';
import { nearestRow, squaredNorms, type NearestSearch, type SearchFactory, type Vectors } from './kmeans.js';

type Ort = typeof import('onnxruntime-node');

let ortModule: Ort | undefined;
function ort(): Ort {
  // Loaded on first use: a process that only reads tokenizer files never loads the native library.
  if (!ortModule) {
    ortModule = createRequire(import.meta.url)('onnxruntime-node') as Ort;
    ortModule.env.logLevel = 'fatal';
  }
  return ortModule;
}

/** Rows per session run: 512 measured as fast as 256..4096, and bounds the padding of the last block. */
export const BLOCK_ROWS = 512;
/**
 * Candidates per row. With K = 1024 about 3% of rows have a second centroid within the band: a
 * full JS scan for each costs twice the whole matrix product, rescoring a few candidates nothing.
 */
const TOP_K = 8;

const U = 2 ** -24;

/** The scoring graph: x [rows x dim], w = -2 C^T [dim x k], cn = |c|^2 [k] -> best t scores and ids. */
function scoreGraph(rows: number, dim: number, k: number, t: number): Uint8Array {
  const g = new Graph();
  const e = new Emitter(g);
  const x = g.input('x', [rows, dim], 'float32');
  const w = g.input('w', [dim, k], 'float32');
  const cn = g.input('cn', [k], 'float32');
  const scores = e.binary('Add', e.matMul(x, w), cn);
  const [values, ids] = g.node('TopK', [scores, g.ints([t])], [[[rows, t], 'float32'], [[rows, t], 'int64']], { axis: 1, largest: 0, sorted: 1 });
  g.output(values!, 'values');
  g.output(ids!, 'ids');
  return g.toBytes('speech-nearest');
}

export interface OrtSearchStats {
  rows: number;
  /** Rows whose best float32 scores were too close to call: settled by the reference formula. */
  rechecked: number;
  /** Of those, rows that needed the full reference scan. */
  scanned: number;
}

/** An onnxruntime search over a fixed codebook (one session, one intra-op thread by default). */
export async function ortSearch(codebook: Float32Array, k: number, dim: number, threads = 1, stats?: OrtSearchStats): Promise<NearestSearch> {
  if (k < 2) throw new Error('the onnxruntime search needs at least 2 centroids');
  const t = Math.min(TOP_K, k);
  const o = ort();
  const session = await o.InferenceSession.create(scoreGraph(BLOCK_ROWS, dim, k, t), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const cNorm = squaredNorms(codebook, k, dim);
  let cMax = 0;
  for (const v of cNorm) cMax = Math.max(cMax, Math.sqrt(v));
  const w = new Float32Array(dim * k);
  for (let j = 0; j < k; j++) for (let d = 0; d < dim; d++) w[d * k + j] = -2 * codebook[j * dim + d]!;
  const wT = new o.Tensor('float32', w, [dim, k]);
  const cnT = new o.Tensor('float32', Float32Array.from(cNorm), [k]);
  const block = new Float32Array(BLOCK_ROWS * dim);

  /** The reference score |c_u|^2 - 2 x.c_u of row i (the same operations, in the same order, as nearestRow). */
  const score = (x: Float32Array, i: number, u: number) => {
    let a = 0;
    for (let d = 0, xo = i * dim, c = u * dim; d < dim; d++) a += x[xo + d]! * codebook[c + d]!;
    return cNorm[u]! - 2 * a;
  };

  return {
    name: 'onnxruntime',
    async nearest(x: Vectors, units: Int32Array, scores?: Float64Array) {
      if (x.dim !== dim) throw new Error(`vectors of ${x.dim} values, codebook of ${dim}`);
      for (let r0 = 0; r0 < x.n; r0 += BLOCK_ROWS) {
        const rows = Math.min(BLOCK_ROWS, x.n - r0);
        block.set(x.data.subarray(r0 * dim, (r0 + rows) * dim));
        if (rows < BLOCK_ROWS) block.fill(0, rows * dim);
        const out = await session.run({ x: new o.Tensor('float32', block, [BLOCK_ROWS, dim]), w: wT, cn: cnT });
        const values = out.values!.data as Float32Array;
        const ids = out.ids!.data as BigInt64Array;
        for (let r = 0; r < rows; r++) {
          const i = r0 + r;
          let xx = 0;
          for (let d = 0, xo = i * dim; d < dim; d++) xx += x.data[xo + d]! * x.data[xo + d]!;
          const v1 = values[t * r]!;
          const bound = (dim + 4) * U * (2 * Math.sqrt(xx) * cMax + cMax * cMax + 2 * Math.abs(v1));
          const band = v1 + 4 * bound;
          let unit: number;
          let best: number;
          if (values[t * r + 1]! > band) {
            unit = Number(ids[t * r]!);
            best = scores ? score(x.data, i, unit) : 0;
          } else if (t < k && !(values[t * r + t - 1]! > band)) {
            ({ unit, score: best } = nearestRow(x.data, i, dim, codebook, cNorm, k));
            if (stats) {
              stats.rechecked++;
              stats.scanned++;
            }
          } else {
            unit = -1;
            best = Infinity;
            for (let c = 0; c < t && values[t * r + c]! <= band; c++) {
              const u = Number(ids[t * r + c]!);
              const s = score(x.data, i, u);
              if (s < best || (s === best && u < unit)) {
                best = s;
                unit = u;
              }
            }
            if (stats) stats.rechecked++;
          }
          units[i] = unit;
          if (scores) scores[i] = best;
        }
        if (stats) stats.rows += rows;
      }
    },
    dispose() {
      void session.release();
    },
  };
}

export const ortSearchFactory: SearchFactory = (codebook, k, dim) => ortSearch(codebook, k, dim);
