import { Rng } from '../util/rng.js';
import { pickToken } from './sample.js';

/**
 * Greedy and beam search over any step-by-step model, batched: rows are independent prompts, each
 * with `beams` hypotheses laid out row-major (hypothesis k of row b is entry b * beams + k).
 */
export interface StepModel {
  /** Logits after each row's prompt, every row repeated `beams` times. */
  start(beams: number): Promise<Float32Array[]>;
  /**
   * Extends hypothesis parents[i] by tokens[i] into entry i (parents index the previous entries;
   * identity when nothing moved) and returns the logits after it.
   */
  step(parents: readonly number[], tokens: readonly number[]): Promise<Float32Array[]>;
}

export interface BeamOptions {
  /** Hypotheses per row; 1 is greedy search (or sampling, with `sample`). */
  beam: number;
  /** With beam 1: draw each token (temperature, top-k, seeded) instead of taking the argmax. */
  sample?: { temperature: number; topK: number; seed: number };
  /** Finished hypotheses are ranked by log-probability / length^lengthPenalty (GNMT-style; 1 by default). */
  lengthPenalty?: number;
}

export function logSoftmax(l: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of l) if (x > max) max = x;
  let sum = 0;
  for (const x of l) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(l, (x) => x - lse);
}

function argmax(l: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
}

/**
 * Each row's best continuation, cut at `eos` (left out) or after budgets[row] tokens. Greedy search
 * feeds finished rows their end token until every row is done, so rows stay in step.
 */
export async function beamSearch(model: StepModel, rows: number, budgets: readonly number[], eos: number, o: BeamOptions): Promise<number[][]> {
  if (!(Number.isInteger(o.beam) && o.beam >= 1)) throw new Error(`beam size ${o.beam} is not a positive integer`);
  if (o.sample && o.beam !== 1) throw new Error(`sampling draws one hypothesis per row: beam ${o.beam} with a temperature`);
  return o.beam === 1 ? greedy(model, rows, budgets, eos, o.sample) : beams(model, rows, budgets, eos, o.beam, o.lengthPenalty ?? 1);
}

async function greedy(model: StepModel, rows: number, budgets: readonly number[], eos: number, sample?: BeamOptions['sample']): Promise<number[][]> {
  const rng = sample ? new Rng(sample.seed) : null;
  const pick = (l: Float32Array) => (rng && sample!.temperature > 0 ? pickToken(l, sample!, rng) : argmax(l));
  const out: number[][] = Array.from({ length: rows }, () => []);
  const done = budgets.map((b) => b <= 0);
  const identity = Array.from({ length: rows }, (_, i) => i);
  let logits = await model.start(1);
  for (;;) {
    const next = logits.map((l, b) => (done[b] ? eos : pick(l)));
    next.forEach((tok, b) => {
      if (done[b]) return;
      if (tok === eos) done[b] = true;
      else if (out[b]!.push(tok) >= budgets[b]!) done[b] = true;
    });
    if (done.every(Boolean)) return out;
    logits = await model.step(identity, next);
  }
}

interface Hyp {
  tokens: number[];
  score: number;
}

async function beams(model: StepModel, rows: number, budgets: readonly number[], eos: number, K: number, alpha: number): Promise<number[][]> {
  const norm = (h: Hyp, len: number) => h.score / Math.pow(Math.max(1, len), alpha);
  // Only the first hypothesis of a row is live at the start: the others would duplicate it.
  let live: Hyp[] = Array.from({ length: rows * K }, (_, i) => ({ tokens: [], score: i % K === 0 ? 0 : -Infinity }));
  const finished: { tokens: number[]; value: number }[][] = Array.from({ length: rows }, () => []);
  const done = budgets.map((b) => b <= 0);
  let logits = await model.start(K);
  for (let t = 0; ; t++) {
    const parents: number[] = [];
    const tokens: number[] = [];
    const nextLive: Hyp[] = [];
    for (let b = 0; b < rows; b++) {
      const base = b * K;
      if (done[b]) {
        for (let k = 0; k < K; k++) {
          parents.push(base + k);
          tokens.push(eos);
          nextLive.push(live[base + k]!);
        }
        continue;
      }
      const cands: { parent: number; tok: number; score: number }[] = [];
      for (let k = 0; k < K; k++) {
        const h = live[base + k]!;
        if (h.score === -Infinity) continue;
        const lp = logSoftmax(logits[base + k]!);
        // The 2K best tokens of each hypothesis are enough for the K best of the row.
        const top = Array.from(lp.keys()).sort((x, y) => lp[y]! - lp[x]!).slice(0, 2 * K);
        for (const tok of top) cands.push({ parent: base + k, tok, score: h.score + lp[tok]! });
      }
      cands.sort((x, y) => y.score - x.score);
      const atLimit = t + 1 >= budgets[b]!;
      const chosen: typeof cands = [];
      for (const c of cands) {
        if (chosen.length === K) break;
        const toks = [...live[c.parent]!.tokens, ...(c.tok === eos ? [] : [c.tok])];
        if (c.tok === eos || atLimit) finished[b]!.push({ tokens: toks, value: norm({ tokens: toks, score: c.score }, toks.length + 1) });
        else chosen.push(c);
      }
      // The row is done once it has K finished hypotheses or the best live one cannot catch up
      // (scores only fall as hypotheses grow; with alpha > 0 this is a heuristic, as in fairseq).
      const bestFinished = Math.max(-Infinity, ...finished[b]!.map((f) => f.value));
      const bestLive = chosen.length ? norm({ tokens: [], score: chosen[0]!.score }, t + 2) : -Infinity;
      if (finished[b]!.length >= K || atLimit || !chosen.length || bestLive < bestFinished) done[b] = true;
      for (let k = 0; k < K; k++) {
        const c = chosen[k];
        if (c) {
          parents.push(c.parent);
          tokens.push(c.tok);
          nextLive.push({ tokens: [...live[c.parent]!.tokens, c.tok], score: c.score });
        } else {
          parents.push(base + k);
          tokens.push(eos);
          nextLive.push({ tokens: [], score: -Infinity });
        }
      }
    }
    live = nextLive;
    if (done.every(Boolean)) break;
    logits = await model.step(parents, tokens);
  }
  return finished.map((f, b) => {
    if (f.length) return f.reduce((a, x) => (x.value > a.value ? x : a)).tokens;
    const best = live.slice(b * K, (b + 1) * K).reduce((a, x) => (x.score > a.score ? x : a));
    return best.tokens;
  });
}
