import { join } from 'node:path';
import type { Command } from 'commander';
import { formatConfig, loadConfig } from '../config/load.js';
import { PretrainConfig } from '../config/schema.js';
import { pretrainTower } from '../train/pretrain.js';
import { flagSets, projectRoot, stageOptions } from './common.js';

export function addPretrain(program: Command): void {
  stageOptions(program.command('pretrain').description('pretrain a decoder tower on unimodal data'))
    .option('-m, --modality <modality>', 'text | speech', 'text')
    .action(async (o) => {
      if (o.modality !== 'text' && o.modality !== 'speech') throw new Error(`--modality ${o.modality}: expected text or speech`);
      const file = o.config ?? join(projectRoot(), 'configs', `pretrain-${o.modality}.yaml`);
      const cfg = loadConfig(PretrainConfig, { file, sets: flagSets(o) });
      if (cfg.modality !== o.modality) throw new Error(`${file} configures a ${cfg.modality} tower but --modality is ${o.modality}`);
      if (o.dryRun) {
        process.stdout.write(formatConfig(cfg));
        return;
      }
      const s = await pretrainTower({ cfg, runsDir: o.runsDir, name: o.name, resume: Boolean(o.resume), progress: o.progress });
      const lines = [
        `run          ${s.run}`,
        `steps        ${s.steps}${s.interrupted ? ' (interrupted: continue with --resume)' : ''}`,
        `engine       ${s.engine}`,
        `parameters   ${(s.params / 1e6).toFixed(2)}M`,
        `train loss   ${s.train_loss.toFixed(4)}`,
        `dev loss     ${s.dev_loss.toFixed(4)} nats/token`,
        `dev ppl      ${s.dev_ppl.toFixed(2)}   (unigram baseline ${s.unigram_dev_ppl.toFixed(2)})`,
        `dev bits     ${(s.dev_loss / Math.LN2).toFixed(3)} per token   (add-one unigram model ${Math.log2(s.unigram_dev_ppl).toFixed(3)})`,
        `time         ${s.seconds.toFixed(0)} s`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
