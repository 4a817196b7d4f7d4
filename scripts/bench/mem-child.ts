/**
 * Peak memory of training steps in a fresh process, so engines' peaks do not mix (the ONNX
 * engine's worker is a thread of this process, so its memory is in this process's RSS):
 *
 *   node dist/scripts/bench/mem-child.js <ort|wasm> <d_model> <steps> [graph cache dir]
 *
 * Prints one JSON line: RSS once the engine holds the model and optimizer state (before the first
 * step; for ort the worker and onnxruntime are loaded, the graph not yet), and the process's peak
 * RSS after the steps, in MB. With a cache dir holding the compiled train graph (the benchmark's
 * timing rounds wrote it), the step does not record the graph in JavaScript first.
 */
import { BATCH, SEQ, benchBatch, benchWeights, towerShape } from './common.js';
import { ortSide, tfjsSide, type Side } from './sides.js';

const [engine, d, steps, cacheDir] = process.argv.slice(2);
const shape = towerShape(Number(d));
const weights = benchWeights(shape);
const batch = benchBatch(shape.vocab_size);
let side: Side;
if (engine === 'ort') {
  side = ortSide(shape, weights, batch, cacheDir);
} else {
  const { initBackend } = await import('../../src/engine/backends.js');
  await initBackend(engine as 'wasm');
  side = await tfjsSide(engine!, shape, weights, batch);
}
// Zero steps: load the weights and moments only (lazily done by the first train call otherwise).
await side.train(0, 0);
const mb = (bytes: number) => bytes / 2 ** 20;
const before = mb(process.memoryUsage().rss);
await side.train(Number(steps), 0);
const peak = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({ engine, d_model: shape.d_model, tokens: BATCH * SEQ, rss_before_mb: before, maxrss_mb: peak }));
side.dispose();
process.exit(0);
