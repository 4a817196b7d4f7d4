import { join } from 'node:path';
import type { Command } from 'commander';
import type { FuseConfig } from '../config/fuse-schema.js';
import { formatConfig } from '../config/load.js';
import { JUDGE_FILE, markJudge } from '../eval/judge.js';
import { projectRoot, stageOptions } from './common.js';
import { fineTuneAndReport, fineTuneConfig, type FinetuneFlags } from './fuse.js';

export function addJudge(program: Command): void {
  const judge = program.command('judge').description('the TTS judge: an ASR model that transcribes what TTS systems say (zipper eval tts)');
  const train = stageOptions(
    judge
      .command('train')
      .description('fine-tune the judge (configs/judge.yaml: the single decoder, ASR only, all the aligned data) and mark its run as a judge'),
  );
  // One judge per set of towers: a fixed name, so a second `judge train` stops (or, with --resume,
  // continues) instead of quietly training another one. (Commander applies defaults when an option
  // is added: the action fills it in; only the help is changed here.)
  train.options.find((opt) => opt.long === '--name')!.description = 'run name: the folder under --runs-dir (default: judge)';
  train
    .option('--text <run>', 'text tower: a `zipper pretrain --modality text` run folder')
    .option('--speech <run>', 'speech tower: a `zipper pretrain --modality speech` run folder')
    .action(async (o: FinetuneFlags) => {
      const cfg = fineTuneConfig(o, 'judge.yaml');
      checkJudgeConfig(cfg);
      if (o.dryRun) {
        process.stdout.write(formatConfig(cfg));
        return;
      }
      const s = await fineTuneAndReport(cfg, { ...o, name: o.name ?? 'judge' });
      await markJudge(s.run, {
        architecture: s.architecture,
        config: o.config ?? join(projectRoot(), 'configs', 'judge.yaml'),
        steps: s.steps,
        interrupted: s.interrupted,
        best_step: s.best_step,
        best_dev_asr_loss: s.metrics.dev_asr_loss ?? null,
      });
      process.stdout.write(`judge          ${join(s.run, JUDGE_FILE)}${s.interrupted ? ' (interrupted: finish it with --resume before judging)' : ''}\n`);
    });
}

/**
 * A judge hears everything the corpus aligns and must learn to transcribe: a fraction would make it
 * a worse listener than the systems trained on all the data, and without ASR examples it learns
 * nothing it is asked to do.
 */
function checkJudgeConfig(cfg: FuseConfig): void {
  if (cfg.data.fraction !== 1) throw new Error(`data.fraction ${cfg.data.fraction}: a judge trains on all the aligned data (1.0)`);
  if (!(cfg.data.tasks.asr > 0)) throw new Error('data.tasks.asr is 0: a judge is an ASR model and needs ASR examples');
}
