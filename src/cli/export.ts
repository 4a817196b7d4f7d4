import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { exportTowerOnnx } from '../export/onnx.js';
import { resolveCheckpoint } from '../train/tower-run.js';

const FORMATS = ['onnx'];

/** Where an export goes by default: the run's export/ folder (never inside a checkpoint, which pruning deletes). */
export function defaultExportPath(runArg: string, checkpointDir: string): string {
  // resolveCheckpoint hands a checkpoint folder back unchanged, and a run folder's latest checkpoint otherwise.
  if (checkpointDir !== runArg) return join(runArg, 'export', 'tower.onnx');
  const parent = dirname(checkpointDir);
  const run = basename(parent) === 'checkpoints' ? dirname(parent) : checkpointDir;
  return join(run, 'export', 'tower.onnx');
}

const size = (n: number) => (n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

export function addExport(program: Command): void {
  program
    .command('export')
    .description('write a trained tower as a self-contained ONNX file with KV-cache inputs/outputs')
    .requiredOption('-r, --run <dir>', 'a run folder (its latest checkpoint) or a checkpoint folder')
    .option('-f, --format <format>', `output format: ${FORMATS.join(' | ')}`, 'onnx')
    .option('-o, --out <file>', 'output file (default: <run>/export/tower.onnx)')
    .option('--batch <n>', 'rows per call, fixed in the graph', (v) => Number(v), 1)
    .option('--no-verify', 'skip running the file against the engine before writing it')
    .action(async (o: { run: string; format: string; out?: string; batch: number; verify: boolean }) => {
      // Checked before anything is read or written.
      if (!FORMATS.includes(o.format)) throw new Error(`unknown export format "${o.format}" (expected ${FORMATS.join(' or ')})`);
      if (!Number.isInteger(o.batch) || o.batch < 1) throw new Error(`--batch must be a positive integer, got ${o.batch}`);
      const dir = resolveCheckpoint(o.run);
      const out = o.out ?? defaultExportPath(o.run, dir);
      const r = await exportTowerOnnx(dir, out, { batch: o.batch, verify: o.verify });
      const m = r.metadata;
      const c = m.config;
      console.log(`exported ${r.file} (${size(r.bytes)})`);
      console.log(
        `${m.kind} (${m.modality}, step ${m.step}): ${r.parameters.toLocaleString('en-US')} parameters, d_model ${c.d_model}, ${c.n_layers} layers, ` +
          `${c.n_heads} heads, vocab ${c.vocab_size}, KV cache ${c.max_len} positions, batch ${m.kvCache.batch}; ${m.format}, opset 17; from ${dir}`,
      );
      const v = r.verification;
      if (v) console.log(`verified: prompt + ${v.steps} greedy steps match ${v.engine}, max |logit diff| ${v.maxAbsDiff.toExponential(2)} (tolerance ${v.tolerance.toExponential(2)})`);
      else console.log('not verified (--no-verify)');
    });
}
