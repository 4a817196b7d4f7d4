import { join } from 'node:path';
import type { Command } from 'commander';
import { evalAsrSplit } from '../eval/asr.js';
import { evalTtsSplit, planTtsEval, type NamedRun } from '../eval/tts.js';
import { chooseEngine, describeEngine, FUSED_DECODE_ORT, type EngineRequest } from '../engine/select.js';
import { loadFusedRun } from '../train/fused.js';

/** The decoding and scoring flags both evaluations take. */
function decodeFlags(cmd: Command, help: { limit: string; beam: string; checkpoint: string }): Command {
  return cmd
    .option('--limit <n>', help.limit, (v) => parseInt(v, 10))
    .option('--beam <n>', help.beam, (v) => parseInt(v, 10), 1)
    .option('--batch <n>', 'utterances decoded together', (v) => parseInt(v, 10), 16)
    .option('--normalizer <name>', 'librispeech | none', 'librispeech')
    .option('--checkpoint <which>', help.checkpoint, 'best');
}

const engineFlags = (cmd: Command): Command => cmd.option('--engine <engine>', 'auto | tfjs | ort', 'auto').option('--backend <backend>', 'auto | tensorflow | webgpu | wasm | cpu', 'auto');

function checkDecodeFlags(o: { normalizer: string; checkpoint: string; limit?: number; beam: number; batch: number }): void {
  if (o.normalizer !== 'librispeech' && o.normalizer !== 'none') throw new Error(`--normalizer ${o.normalizer}: expected librispeech or none`);
  if (o.checkpoint !== 'best' && o.checkpoint !== 'latest') throw new Error(`--checkpoint ${o.checkpoint}: expected best or latest`);
  for (const k of ['limit', 'beam', 'batch'] as const) if (o[k] !== undefined && !(o[k]! >= 1)) throw new Error(`--${k}: expected a positive integer`);
}

export function addEval(program: Command): void {
  const ev = program.command('eval').description('evaluate a fine-tuned model');
  const asr = ev
    .command('asr')
    .description('ASR word error rate on LibriSpeech-layout splits (corpus-level WER and CER, per-utterance recognitions and alignments)')
    .requiredOption('-r, --run <dir>', 'a `zipper fuse` run folder (its best checkpoint) or a checkpoint folder')
    .option('--splits <names>', 'comma-separated splits', 'test-clean,test-other')
    .option('--corpus <dir>', 'corpus root with manifests/', 'data/synth')
    .option('--tokens <dir>', 'token folder (default: <corpus>/tokens)');
  engineFlags(decodeFlags(asr, { limit: 'score at most n utterances per split (a fixed seeded choice)', beam: 'beam size (1: greedy)', checkpoint: 'best (by dev loss) or latest' }))
    .option('-o, --out <dir>', 'where results go (default: <run>/eval/asr-<checkpoint>-beam<n>/<split>)')
    .action(async (o) => {
      checkDecodeFlags(o);
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
  const tts = ev
    .command('tts')
    .description('TTS word error rate on a LibriTTS-layout split through a judge (zipper judge train): against the gold transcript, against the judge\'s transcript of the gold units, and the judge\'s own (oracle)')
    .requiredOption('-r, --run <dir>', 'the model under test: a `zipper fuse` run folder (its best checkpoint) or a checkpoint folder')
    .requiredOption('-j, --judge <dir>', 'the judge: a `zipper judge train` run folder')
    .option('--split <name>', 'split: <corpus>/manifests/libritts-<split>.jsonl', 'test-clean')
    .option('--corpus <dir>', 'corpus root with manifests/', 'data/synth');
  engineFlags(decodeFlags(tts, { limit: 'score at most n utterances (a fixed seeded choice)', beam: 'beam size of both models (1: greedy)', checkpoint: 'the model under test: best (by dev loss) or latest (the judge: its best)' }))
    .option('-o, --out <dir>', 'results go to <dir>/<split> (default: <run>/eval/tts-<checkpoint>-beam<n>/<split>)')
    .option('--any-judge', 'accept a --judge that zipper judge train did not make (a warning is printed)')
    .action(async (o) => {
      checkDecodeFlags(o);
      const named = (flag: string, path: string, which: 'best' | 'latest'): NamedRun => {
        try {
          return { path, run: loadFusedRun(path, which) };
        } catch (e) {
          throw new Error(`${flag} ${path}: ${(e as Error).message}`);
        }
      };
      const split: string = o.split;
      const out = o.out ? join(o.out, split) : join(o.run, 'eval', `tts-${o.checkpoint}-beam${o.beam}`, split);
      // Every input is read and checked (and the gold units encoded) before an engine starts.
      const plan = await planTtsEval(named('--run', o.run, o.checkpoint), named('--judge', o.judge, 'best'), {
        corpus: o.corpus, split, limit: o.limit, beam: o.beam, batch: o.batch, normalizer: o.normalizer, out, anyJudge: Boolean(o.anyJudge), log: (l) => console.error(l),
      });
      const choice = await chooseEngine(o.engine as EngineRequest, o.backend, FUSED_DECODE_ORT);
      console.error(`${describeEngine(choice)}; ${plan.subject.run.json.architecture} ${plan.subject.run.checkpoint} (step ${plan.subject.run.step}), judged by ${plan.judge.run.checkpoint} (step ${plan.judge.run.step}); ${plan.utts.length} utterances of ${plan.manifest}`);
      const r = await evalTtsSplit(plan, choice);
      const pct = (x: number | null) => (x === null ? '-' : (x * 100).toFixed(2));
      const u = r.units;
      console.error(`units per utterance: synthesized ${u.synth_mean.toFixed(1)}, gold ${u.gold_mean.toFixed(1)} (x${u.ratio.toFixed(2)}; longest ${u.synth_max}); too long: ${r.too_long.text} texts, ${r.too_long.synthesized} synthesized, ${r.too_long.gold} gold -> ${out}`);
      const rows = [
        `| ${split} (${r.utterances} utterances) | WER vs gold % | WER vs target % | CER vs gold % |`,
        '|---|---|---|---|',
        `| system | ${pct(r.wer_gold)} | ${pct(r.wer_target)} | ${pct(r.cer_gold)} |`,
        `| oracle (judge on gold) | ${pct(r.wer_oracle)} | - | - |`,
      ];
      process.stdout.write(rows.join('\n') + '\n');
    });
}
