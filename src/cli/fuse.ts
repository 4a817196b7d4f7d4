import { join } from 'node:path';
import type { Command } from 'commander';
import { FuseConfig } from '../config/fuse-schema.js';
import { formatConfig, loadConfig } from '../config/load.js';
import { finetune, type FinetuneSummary } from '../train/finetune.js';
import { flagSets, projectRoot, stageOptions } from './common.js';

/** What stageOptions parses, plus the towers: the flags `fuse` and `judge train` share. */
export interface FinetuneFlags {
  config?: string;
  set: string[];
  dryRun?: boolean;
  name?: string;
  resume?: boolean;
  runsDir: string;
  engine?: string;
  backend?: string;
  progress: boolean;
  text?: string;
  speech?: string;
}

/** The fine-tuning config: --config (or configs/<defaultFile>), then the flags' overrides. */
export function fineTuneConfig(o: FinetuneFlags, defaultFile: string, extraSets: string[] = []): FuseConfig {
  const sets = flagSets(o);
  if (o.text) sets.push(`text_tower=${o.text}`);
  if (o.speech) sets.push(`speech_tower=${o.speech}`);
  return loadConfig(FuseConfig, { file: o.config ?? join(projectRoot(), 'configs', defaultFile), sets: [...sets, ...extraSets] });
}

/** Runs the fine-tuning stage and prints its human summary. */
export async function fineTuneAndReport(cfg: FuseConfig, o: FinetuneFlags): Promise<FinetuneSummary> {
  const s = await finetune({ cfg, runsDir: o.runsDir, name: o.name, resume: Boolean(o.resume), progress: o.progress });
  const m = s.metrics;
  const f = (k: string, digits = 4) => (m[k] === undefined ? '-' : m[k]!.toFixed(digits));
  const lines = [
    `run            ${s.run}`,
    `model          ${s.architecture}${s.architecture === 'zipper' ? `, frozen: ${s.freeze}` : ''}; ${(s.params / 1e6).toFixed(2)}M parameters, ${(s.trainable_params / 1e6).toFixed(2)}M trainable`,
    `aligned data   ${s.aligned_utterances} utterances, ${s.aligned_hours.toFixed(2)} h (fraction ${s.fraction})`,
    `steps          ${s.steps}${s.interrupted ? ' (interrupted: continue with --resume)' : s.stopped_early ? ' (stopped early)' : ''}`,
    `engine         ${s.engine}`,
    `train loss     ${s.train_loss.toFixed(4)}`,
    `dev loss       ${s.dev_loss.toFixed(4)} (best ${s.best_dev_loss.toFixed(4)} at step ${s.best_step}, chosen by ${s.selected_on}: kept in ${join(s.run, 'best')})`,
    `at best        ASR loss ${f('dev_asr_loss')}, gap ${f('gap_asr')}; TTS loss ${f('dev_tts_loss')}, gap ${f('gap_tts')}`,
    ...(s.architecture === 'zipper' ? [`gates (tanh)   text attn ${f('gate_text_attn', 3)} ff ${f('gate_text_ff', 3)}; speech attn ${f('gate_speech_attn', 3)} ff ${f('gate_speech_ff', 3)}`] : []),
    `time           ${s.seconds.toFixed(0)} s`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return s;
}

export function addFuse(program: Command): void {
  stageOptions(
    program
      .command('fuse')
      .description('zip a pretrained text tower and speech tower (or expand the text tower\'s vocabulary: --architecture single-decoder) and fine-tune on aligned speech-text data'),
  )
    .option('--text <run>', 'text tower: a `zipper pretrain --modality text` run folder')
    .option('--speech <run>', 'speech tower: a `zipper pretrain --modality speech` run folder')
    .option('--freeze <towers>', 'towers whose own weights stay fixed: text | speech | both | none')
    .option('--architecture <name>', 'zipper | single-decoder')
    .option('--fraction <f>', 'share of the aligned training utterances, in (0, 1]')
    .action(async (o) => {
      const sets: string[] = [];
      if (o.freeze) sets.push(`freeze=${o.freeze}`);
      if (o.architecture) sets.push(`architecture=${o.architecture}`);
      if (o.fraction) sets.push(`data.fraction=${o.fraction}`);
      const cfg = fineTuneConfig(o, 'fuse.yaml', sets);
      if (o.dryRun) {
        process.stdout.write(formatConfig(cfg));
        return;
      }
      await fineTuneAndReport(cfg, o);
    });
}
