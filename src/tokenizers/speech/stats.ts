// Unit statistics written to tokens.json: what SCALE.md found worth watching in speech units.

/** Occurrences of each of k units (ids already without the offset). */
export function histogram(sequences: Iterable<ArrayLike<number>>, k: number): Float64Array {
  const h = new Float64Array(k);
  for (const s of sequences) for (let i = 0; i < s.length; i++) h[s[i]!]++;
  return h;
}

/** Unigram entropy in bits (the loss a tower must beat; log2 k for uniform use). */
export function entropyBits(h: Float64Array): number {
  const total = h.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let H = 0;
  for (const c of h) if (c > 0) H -= (c / total) * Math.log2(c / total);
  return H;
}

/** Total-variation distance between two histograms' distributions (0 same, 1 disjoint). */
export function totalVariation(a: Float64Array, b: Float64Array): number {
  const sa = a.reduce((x, y) => x + y, 0);
  const sb = b.reduce((x, y) => x + y, 0);
  if (sa === 0 || sb === 0) return sa === sb ? 0 : 1;
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! / sa - b[i]! / sb);
  return d / 2;
}

/**
 * Share of unit occurrences that fall in clusters where one speaker supplies more than half of the
 * occurrences (SCALE.md measured 75% for log-mel k-means on 8 flite "speakers": voice-specific
 * units). Only meaningful with several speakers; null with fewer than two.
 */
export function speakerDominatedShare(sequences: readonly ArrayLike<number>[], speakers: readonly string[], k: number): { share: number; speakers: number } | null {
  const ids = new Map<string, number>();
  for (const s of speakers) if (!ids.has(s)) ids.set(s, ids.size);
  if (ids.size < 2) return null;
  const counts = new Float64Array(k * ids.size);
  sequences.forEach((seq, i) => {
    const spk = ids.get(speakers[i]!)!;
    for (let t = 0; t < seq.length; t++) counts[seq[t]! * ids.size + spk]++;
  });
  let dominated = 0;
  let total = 0;
  for (let u = 0; u < k; u++) {
    let sum = 0;
    let max = 0;
    for (let s = 0; s < ids.size; s++) {
      const c = counts[u * ids.size + s]!;
      sum += c;
      if (c > max) max = c;
    }
    total += sum;
    if (max > sum / 2) dominated += sum;
  }
  return { share: total ? dominated / total : 0, speakers: ids.size };
}
