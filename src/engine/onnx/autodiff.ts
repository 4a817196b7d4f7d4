import type { Sym } from './graph.js';
import type { Recorder } from './recorder.js';

/**
 * Reverse-mode differentiation over a recorder's tape: walk it from the last op to the first,
 * summing each value's incoming gradients once all its consumers (later on the tape) are done, and
 * call each op's backward rule. Returns d(y)/d(w) for each w in `wrt` (null where y does not depend
 * on w). `y` must be a scalar.
 */
export function gradients(rec: Recorder, y: Sym, wrt: readonly Sym[]): (Sym | null)[] {
  if (y.size !== 1) throw new Error(`gradients of a non-scalar [${y.shape}]`);
  const e = rec.e;
  const pending = new Map<string, Sym[]>([[y.name, [rec.g.init(Float32Array.of(1), y.shape)]]]);
  for (let i = rec.tape.length - 1; i >= 0; i--) {
    const t = rec.tape[i]!;
    const parts = pending.get(t.out.name);
    if (!parts) continue; // does not lead to y
    pending.delete(t.out.name);
    const need = t.inputs.map((s) => rec.needsGrad(s));
    const dxs = t.backward(e.sum(parts), need);
    t.inputs.forEach((s, k) => {
      const d = dxs[k];
      if (!need[k] || !d) return;
      const list = pending.get(s.name);
      if (list) list.push(d);
      else pending.set(s.name, [d]);
    });
  }
  return wrt.map((w) => {
    const parts = pending.get(w.name);
    return parts ? e.sum(parts) : null;
  });
}
