// k-means for the speech codebook: k-means++ initialisation, Lloyd iterations, and THE definition of
// "nearest centroid" that every faster search must reproduce exactly (see nearest.ts).
//
// The definition: for a float32 vector x, the unit is argmin_k (|c_k|^2 - 2 x.c_k) evaluated in
// float64 in index order d = 0..dim-1 (what nearestScan computes), ties to the lower index. Float32
// engines compute the same scores approximately and send any row whose best two scores are closer
// than their error bound back to nearestScan, so the ids never depend on the engine or machine.
import { Rng } from '../../util/rng.js';

/** n row-major vectors of `dim` floats. */
export interface Vectors {
  data: Float32Array;
  n: number;
  dim: number;
}

/** |c_k|^2 for every centroid, in float64 (the scores' constant term). */
export function squaredNorms(c: Float32Array, k: number, dim: number): Float64Array {
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let d = 0, o = j * dim; d < dim; d++, o++) s += c[o]! * c[o]!;
    out[j] = s;
  }
  return out;
}

/**
 * The reference nearest-centroid search for row `i` of `x`: returns the unit and writes its score
 * (|c|^2 - 2 x.c; add |x|^2 for the squared distance) to scoreOut[i] when given.
 */
export function nearestRow(x: Float32Array, i: number, dim: number, c: Float32Array, cNorm: Float64Array, k: number): { unit: number; score: number } {
  const xo = i * dim;
  let best = Infinity;
  let unit = 0;
  let j = 0;
  // Four centroids per pass over x: each x value is read once for four products.
  for (; j + 4 <= k; j += 4) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const c0 = j * dim, c1 = c0 + dim, c2 = c1 + dim, c3 = c2 + dim;
    for (let d = 0; d < dim; d++) {
      const v = x[xo + d]!;
      a0 += v * c[c0 + d]!;
      a1 += v * c[c1 + d]!;
      a2 += v * c[c2 + d]!;
      a3 += v * c[c3 + d]!;
    }
    const s0 = cNorm[j]! - 2 * a0, s1 = cNorm[j + 1]! - 2 * a1, s2 = cNorm[j + 2]! - 2 * a2, s3 = cNorm[j + 3]! - 2 * a3;
    if (s0 < best) { best = s0; unit = j; }
    if (s1 < best) { best = s1; unit = j + 1; }
    if (s2 < best) { best = s2; unit = j + 2; }
    if (s3 < best) { best = s3; unit = j + 3; }
  }
  for (; j < k; j++) {
    let a = 0;
    for (let d = 0, o = j * dim; d < dim; d++, o++) a += x[xo + d]! * c[o]!;
    const s = cNorm[j]! - 2 * a;
    if (s < best) { best = s; unit = j; }
  }
  return { unit, score: best };
}

/**
 * Nearest centroids of rows [from, to) of x, by the reference scan: units into `units`, scores
 * (|c|^2 - 2 x.c) into `scores` when given.
 */
export function nearestScan(x: Float32Array, from: number, to: number, dim: number, c: Float32Array, cNorm: Float64Array, k: number, units: Int32Array, scores?: Float64Array): void {
  for (let i = from; i < to; i++) {
    const r = nearestRow(x, i, dim, c, cNorm, k);
    units[i] = r.unit;
    if (scores) scores[i] = r.score;
  }
}

/** A nearest-centroid search (the reference scan or an engine); results equal the scan's. */
export interface NearestSearch {
  readonly name: string;
  /** Units of the n rows of x (and their scores |c|^2 - 2 x.c when `scores` is given). */
  nearest(x: Vectors, units: Int32Array, scores?: Float64Array): Promise<void>;
  dispose(): void;
}

/** Makes a search over a fixed codebook. */
export type SearchFactory = (codebook: Float32Array, k: number, dim: number) => Promise<NearestSearch>;

export const scanSearch: SearchFactory = async (codebook, k, dim) => {
  const cNorm = squaredNorms(codebook, k, dim);
  return {
    name: 'js',
    async nearest(x, units, scores) {
      nearestScan(x.data, 0, x.n, dim, codebook, cNorm, k, units, scores);
    },
    dispose() {},
  };
};

export interface KmeansOptions {
  k: number;
  iterations: number;
  /** k-means++ draws its centres from this many rows of the sample, chosen at random. */
  initVectors: number;
  seed: number;
  search?: SearchFactory;
  /** Called after initialisation (iteration 0) and after each Lloyd iteration. */
  onIteration?: (iteration: number, meanSquaredDistance: number) => void;
}

export interface KmeansResult {
  centroids: Float32Array;
  /** Mean squared distance to the nearest centroid after the last iteration. */
  inertia: number;
  /** Inertia after initialisation and after each iteration. */
  history: number[];
  /** Clusters that went empty and were re-seeded, summed over iterations. */
  reseeded: number;
}

/**
 * k-means++ (Arthur & Vassilvitskii 2007) on the first `m` rows: each new centre is a row drawn with
 * probability proportional to its squared distance from the nearest centre so far. A row whose
 * centre is far from the new one cannot move to it (|c_new - c_a|^2 >= 4 d^2 means the new centre
 * is no closer, by the triangle inequality), which skips most distance computations late on.
 */
export function kmeansPlusPlus(x: Vectors, m: number, k: number, rng: Rng): Float32Array {
  const { dim, data } = x;
  if (m < k) throw new Error(`k-means++ needs at least ${k} vectors, got ${m}`);
  const centres = new Float32Array(k * dim);
  const d2 = new Float64Array(m).fill(Infinity);
  const owner = new Int32Array(m);
  const cc = new Float64Array(k);
  let chosen = rng.int(m);
  for (let j = 0; j < k; j++) {
    centres.set(data.subarray(chosen * dim, (chosen + 1) * dim), j * dim);
    const co = j * dim;
    for (let a = 0; a < j; a++) {
      let s = 0;
      for (let d = 0, o = a * dim; d < dim; d++, o++) {
        const t = centres[co + d]! - centres[o]!;
        s += t * t;
      }
      cc[a] = s;
    }
    let total = 0;
    for (let i = 0; i < m; i++) {
      if (j === 0 || cc[owner[i]!]! < 4 * d2[i]!) {
        let s = 0;
        for (let d = 0, o = i * dim; d < dim; d++, o++) {
          const t = data[o]! - centres[co + d]!;
          s += t * t;
        }
        if (s < d2[i]!) {
          d2[i] = s;
          owner[i] = j;
        }
      }
      total += d2[i]!;
    }
    if (j + 1 === k) break;
    if (total === 0) {
      // Fewer distinct vectors than centres: duplicate picks are unavoidable; take rows in order.
      chosen = (chosen + 1) % m;
      continue;
    }
    let r = rng.next() * total;
    chosen = m - 1;
    for (let i = 0; i < m; i++) {
      r -= d2[i]!;
      if (r < 0) {
        chosen = i;
        break;
      }
    }
  }
  return centres;
}

/** The rows `rows` of x, in that order. */
export function gatherRows(x: Vectors, rows: ArrayLike<number>): Vectors {
  const out = new Float32Array(rows.length * x.dim);
  for (let r = 0; r < rows.length; r++) out.set(x.data.subarray(rows[r]! * x.dim, (rows[r]! + 1) * x.dim), r * x.dim);
  return { data: out, n: rows.length, dim: x.dim };
}

/** Squared norm of row i. */
function rowNorm(data: Float32Array, i: number, dim: number): number {
  let s = 0;
  for (let d = 0, o = i * dim; d < dim; d++, o++) s += data[o]! * data[o]!;
  return s;
}

/** k-means++ then Lloyd iterations; deterministic for a seed (whatever search is used). */
export async function kmeans(x: Vectors, opts: KmeansOptions): Promise<KmeansResult> {
  const { n, dim, data } = x;
  const { k } = opts;
  if (n < k) throw new Error(`k-means: ${n} vectors cannot make ${k} clusters`);
  const rng = new Rng(opts.seed);
  const m = Math.min(n, Math.max(k, opts.initVectors));
  const centroids = kmeansPlusPlus(m === n ? x : gatherRows(x, rng.permutation(n).subarray(0, m)), m, k, rng);
  const makeSearch = opts.search ?? scanSearch;
  const xNorm = new Float64Array(n);
  for (let i = 0; i < n; i++) xNorm[i] = rowNorm(data, i, dim);
  const units = new Int32Array(n);
  const scores = new Float64Array(n);
  const history: number[] = [];
  let reseeded = 0;

  const assign = async (): Promise<number> => {
    const search = await makeSearch(centroids, k, dim);
    try {
      await search.nearest(x, units, scores);
    } finally {
      search.dispose();
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += Math.max(0, scores[i]! + xNorm[i]!);
    return total / n;
  };

  history.push(await assign());
  opts.onIteration?.(0, history[0]!);
  const sums = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  for (let it = 1; it <= opts.iterations; it++) {
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const u = units[i]!;
      counts[u]!++;
      for (let d = 0, o = i * dim, s = u * dim; d < dim; d++) sums[s + d] += data[o + d]!;
    }
    // An empty cluster takes the row farthest from its own centroid (each such row used once).
    let farthest: number[] | null = null;
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) {
        farthest ??= Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! + xNorm[b]! - (scores[a]! + xNorm[a]!) || a - b);
        const row = farthest.shift()!;
        centroids.set(data.subarray(row * dim, (row + 1) * dim), j * dim);
        reseeded++;
        continue;
      }
      for (let d = 0; d < dim; d++) centroids[j * dim + d] = sums[j * dim + d]! / counts[j]!;
    }
    history.push(await assign());
    opts.onIteration?.(it, history[it]!);
  }
  return { centroids, inertia: history[history.length - 1]!, history, reseeded };
}
