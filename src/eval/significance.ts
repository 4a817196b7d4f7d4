import wilcoxon from '@stdlib/stats-wilcoxon';

/**
 * The paired test the paper uses to compare systems: Wilcoxon signed-rank on per-utterance scores
 * (here word errors) of two systems on the same utterances. Two-sided; zero differences dropped
 * (Wilcoxon's own method, stdlib's default); exact below 50 non-zero pairs, normal approximation with
 * continuity correction above.
 */
export interface PairedTest {
  /** Pairs compared (utterances both systems were scored on). */
  n: number;
  /** Pairs that differ (the ones the test uses). */
  differing: number;
  pValue: number;
  /** Mean of a - b over all pairs: negative when the first system makes fewer errors. */
  meanDifference: number;
}

export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): PairedTest {
  if (a.length !== b.length) throw new Error(`paired test: ${a.length} scores against ${b.length}; both systems must be scored on the same utterances`);
  if (!a.length) throw new Error('paired test: no utterances');
  const differing = a.filter((x, i) => x !== b[i]).length;
  const meanDifference = a.reduce((s, x, i) => s + x - b[i]!, 0) / a.length;
  // stdlib refuses all-zero differences; they are the clearest case of "no difference".
  if (!differing) return { n: a.length, differing, pValue: 1, meanDifference };
  const r = wilcoxon([...a], [...b], { alternative: 'two-sided', zeroMethod: 'wilcox', correction: true });
  return { n: a.length, differing, pValue: r.pValue, meanDifference };
}

/** Per-utterance scores of two systems, matched by utterance id (both must cover the same ids). */
export function pairById(a: readonly { id: string; errors: number }[], b: readonly { id: string; errors: number }[], what: string): [number[], number[]] {
  const bm = new Map(b.map((u) => [u.id, u.errors]));
  if (a.length !== b.length || a.some((u) => !bm.has(u.id))) throw new Error(`${what}: the two systems were scored on different utterances (${a.length} and ${b.length}); evaluate both on the same split and limit`);
  return [a.map((u) => u.errors), a.map((u) => bm.get(u.id)!)];
}
