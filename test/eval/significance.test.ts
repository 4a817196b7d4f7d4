import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairById, wilcoxonSignedRank } from '../../src/eval/significance.js';

// Reference p-values from SciPy 1.17 (scipy.stats.wilcoxon, zero_method="wilcox", correction=True).
test('wilcoxonSignedRank: exact p-value for a small sample matches SciPy', () => {
  const a = [3, 5, 2, 8, 4, 6, 1, 0, 7, 3, 9, 2];
  const b = [4, 5, 4, 9, 4, 8, 3, 1, 7, 6, 9, 5];
  const r = wilcoxonSignedRank(a, b);
  assert.equal(r.n, 12);
  assert.equal(r.differing, 8);
  // All eight differences point one way. SciPy's exact p is 2/2^8 = 0.0078; with tied |differences|
  // stdlib (like R's wilcox.test) uses the normal approximation: SciPy's method="approx" gives 0.013213.
  assert.ok(Math.abs(r.pValue - 0.013213109218729724) < 1e-9, `p ${r.pValue}`);
  assert.ok(r.meanDifference < 0, 'a makes fewer errors');
});

test('wilcoxonSignedRank: normal approximation on 120 pairs with ties and zeros matches SciPy', () => {
  // A deterministic sample with ties and zero differences (as per-utterance error counts have).
  let s = 7;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647); // exact in doubles (Park-Miller)
  const x = Array.from({ length: 120 }, () => Math.floor(rnd() * 11));
  const y = x.map((v) => v + [0, 0, 1, 2, -1][Math.floor(rnd() * 5)]!);
  const r = wilcoxonSignedRank(x, y);
  // SciPy: 8.3475e-06 (normal approximation with the tie correction of the variance).
  assert.ok(Math.abs(r.pValue / 8.347533790615772e-6 - 1) < 1e-6, `p ${r.pValue}`);
  // Same systems compared with themselves shifted symmetrically: no evidence either way.
  const z = x.map((v, i) => v + (i % 2 ? 1 : -1));
  assert.ok(wilcoxonSignedRank(x, z).pValue > 0.5);
});

test('wilcoxonSignedRank: identical systems give p = 1; mismatched lengths are refused', () => {
  assert.equal(wilcoxonSignedRank([1, 2, 3], [1, 2, 3]).pValue, 1);
  assert.throws(() => wilcoxonSignedRank([1, 2], [1]), /same utterances/);
  assert.throws(() => pairById([{ id: 'a', errors: 1 }], [{ id: 'b', errors: 1 }], 'x'), /different utterances/);
  assert.deepEqual(pairById([{ id: 'a', errors: 1 }, { id: 'b', errors: 2 }], [{ id: 'b', errors: 5 }, { id: 'a', errors: 4 }], 'x'), [[1, 2], [4, 5]]);
});
