import { join } from 'node:path';
import type { Command } from 'commander';
import { evalAsrSplit } from '../eval/asr.js';
import { chooseEngine, describeEngine, FUSED_DECODE_ORT, type EngineRequest } from '../engine/select.js';
import { loadFusedRun } from '../train/fused.js';

export function addEval(program: Command): void {
  const ev = program.command('eval').description('evaluate a fine-tuned model');
  ev.command('asr')
    .description('ASR word error rate on LibriSpeech-layout splits (corpus-level WER and CER, per-utterance recognitions and alignments)')
    .requiredOption('-r, --run <dir>', 'a `zipper fuse` run folder (its best checkpoint) or a checkpoint folder')
    .option('--splits <names>', 'comma-separated splits', 'test-clean,test-other')
    .option('--corpus <dir>', 'corpus root with manifests/', 'data/synth')
    .option('--tokens <dir>', 'token folder (default: <corpus>/tokens)')
    .option('--limit <n>', 'score at most n utterances per split (a fixed seeded choice)', (v) => parseInt(v, 10))
    .option('--beam <n>', 'beam size (1: greedy)', (v) => parseInt(v, 10), 1)
    .option('--batch <n>', 'utterances decoded together', (v) => parseInt(v, 10), 16)
    .option('--normalizer <name>', 'librispeech | none', 'librispeech')
    .option('--checkpoint <which>', 'best (by dev loss) or latest', 'best')
    .option('-o, --out <dir>', 'where results go (default: <run>/eval/asr-<checkpoint>-beam<n>/<split>)')
    .option('--engine <engine>', 'auto | tfjs | ort', 'auto')
    .option('--backend <backend>', 'auto | tensorflow | webgpu | wasm | cpu', 'auto')
    .action(async (o) => {
      if (o.normalizer !== 'librispeech' && o.normalizer !== 'none') throw new Error(`--normalizer ${o.normalizer}: expected librispeech or none`);
      if (o.checkpoint !== 'best' && o.checkpoint !== 'latest') throw new Error(`--checkpoint ${o.checkpoint}: expected best or latest`);
      const run = loadFusedRun(o.run, o.checkpoint);
      const choice = await chooseEngine(o.engine as EngineRequest, o.backend, FUSED_DECODE_ORT);
      console.error(`${describeEngine(choice)}; ${run.json.architecture} ${run.checkpoint} (step ${run.step})`);
      const rows: string[] = ['| split | utterances | WER % | CER % | sub | del | ins | ref words | too long | seconds |', '|---|---|---|---|---|---|---|---|---|---|'];
      for (const split of String(o.splits).split(',').filter(Boolean)) {
        const out = o.out ? join(o.out, split) : join(o.run, 'eval', `asr-${o.checkpoint}-beam${o.beam}`, split);
        const r = await evalAsrSplit(run, choice, { corpus: o.corpus, tokens: o.tokens ?? join(o.corpus, 'tokens'), split, limit: o.limit, beam: o.beam, batch: o.batch, normalizer: o.normalizer, out });
        const k = r.counts;
        rows.push(`| ${split} | ${r.utterances} | ${(r.wer * 100).toFixed(2)} | ${(r.cer * 100).toFixed(2)} | ${k.substitutions} | ${k.deletions} | ${k.insertions} | ${k.refWords} | ${r.too_long} | ${r.seconds.toFixed(0)} |`);
        console.error(`${split}: WER ${(r.wer * 100).toFixed(2)}% -> ${out}`);
      }
      process.stdout.write(rows.join('\n') + '\n');
    });
}
