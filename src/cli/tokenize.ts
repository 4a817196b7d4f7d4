import { join } from 'node:path';
import type { Command } from 'commander';
import { formatConfig, loadConfig } from '../config/load.js';
import { TokenizeConfig } from '../config/speech-schema.js';
import { tokenizeCorpus } from '../tokenizers/speech/tokenize.js';
import { collect, projectRoot } from './common.js';

export function addTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('learn the speech codebook on the unlabelled pool and write speech tokens for every split')
    .requiredOption('--corpus <dir>', 'corpus root (manifests/<split>.jsonl)')
    .option('-o, --out <dir>', 'token folder (default: <corpus>/tokens)')
    .option('--tokenizer <file>', 'use this speech-tokenizer.json (its own config applies) instead of learning a codebook')
    .option('-c, --config <file>', 'YAML config (default: configs/tokenize.yaml)')
    .option('-s, --set <key=value>', 'override a config key, e.g. --set tokenizer.kmeans.codebook_size=256 (repeatable)', collect, [])
    .option('--workers <n>', 'threads for features and units (overrides the config)')
    .option('--dry-run', 'print the resolved config and exit')
    .option('--no-progress', 'no progress bars')
    .action(async (o) => {
      const file = o.config ?? join(projectRoot(), 'configs', 'tokenize.yaml');
      const sets: string[] = [...o.set];
      if (o.workers) sets.push(`workers=${o.workers}`);
      const cfg = loadConfig(TokenizeConfig, { file, sets });
      if (o.dryRun) {
        process.stdout.write(formatConfig(cfg));
        return;
      }
      const out = o.out ?? join(o.corpus, 'tokens');
      const s = await tokenizeCorpus({ corpus: o.corpus, out, cfg, tokenizerFile: o.tokenizer, progress: o.progress });
      const r = s.record;
      const lines = [
        `tokens       ${s.out}${s.reused ? ' (reused: inputs unchanged)' : ''}`,
        `tokenizer    ${s.tokenizer}, ${r.tokenizer.codebook_size} units (vocabulary ${r.tokenizer.vocab_size}), ${r.tokenizer.units_per_second} units/s`,
        ...Object.entries(r.splits).map(
          ([split, x]) =>
            `${split.padEnd(17)}${String(x.utterances).padStart(6)} utterances ${String(x.units).padStart(9)} units  ${x.unigram_entropy_bits.toFixed(2)} bits  tv ${x.tv_from_pool.toFixed(2)}` +
            (x.skipped ? `  skipped ${x.skipped}` : '') +
            (x.resampled ? `  resampled ${x.resampled}` : ''),
        ),
        `entropy      ${r.stats.pool_unigram_entropy_bits.toFixed(2)} bits/unit on the pool (uniform ${r.stats.uniform_entropy_bits.toFixed(2)}), ${r.stats.units_used} units used`,
        ...(r.stats.speaker_dominated_share === null ? [] : [`speakers     ${(100 * r.stats.speaker_dominated_share).toFixed(0)}% of pool units in clusters one of ${r.stats.speakers} speakers dominates`]),
        `speed        ${r.timing.x_real_time.toFixed(0)}x real time on ${r.timing.workers} workers${r.timing.codebook_seconds === null ? '' : `; codebook ${r.timing.codebook_seconds.toFixed(1)} s`}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
