import { dirname, join, relative, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { formatConfig, loadConfig } from '../config/load.js';
import { DataConfig } from '../config/data-schema.js';
import { environmentRecord } from '../run/env.js';
import { createLogger } from '../run/log.js';
import { writeJsonFile } from '../util/fs.js';
import { collect, projectRoot } from './common.js';

// The data stages load audio codecs (libflacjs starts asynchronously, ~0.1 s): imported only when
// a data command runs, so other commands do not pay for them.

function dataConfig(o: { config?: string; set: string[] }, preset: string): DataConfig {
  return loadConfig(DataConfig, { file: o.config ?? join(projectRoot(), 'configs', preset), sets: o.set });
}

export function addData(program: Command): void {
  const data = program.command('data').description('speech corpora: build the built-in one, or index a real one');

  data
    .command('synth')
    .description('build the built-in speech corpus (Brown sentences spoken by flite) in LibriSpeech and LibriTTS layouts')
    .option('-c, --config <file>', 'YAML config (default: configs/data-synth.yaml)')
    .option('-s, --set <key=value>', 'override a config key, e.g. --set hours.train-aligned=2 (repeatable)', collect, [])
    .option('-w, --workers <n>', 'worker threads (default: the config, 0 = all cores)')
    .option('--dry-run', 'print the resolved config and exit')
    .option('--no-progress', 'no progress bar')
    .action(async (o) => {
      const sets = [...o.set, ...(o.workers !== undefined ? [`workers=${o.workers}`] : [])];
      const cfg = dataConfig({ config: o.config, set: sets }, 'data-synth.yaml');
      if (o.dryRun) {
        process.stdout.write(formatConfig(cfg));
        return;
      }
      const { synthCorpus } = await import('../data/synth/corpus.js');
      const r = await synthCorpus(cfg, { log: createLogger(), progress: o.progress });
      const lines = [`corpus       ${r.root} (${r.status === 'complete' ? 'already complete: nothing to do' : 'built'})`, `config hash  ${r.info.config_hash}`];
      for (const [split, s] of Object.entries(r.info.splits)) {
        lines.push(`${split.padEnd(17)}${s.hours.toFixed(2).padStart(7)} h  ${String(s.utterances).padStart(6)} utterances  ${String(s.speakers.length).padStart(3)} speakers`);
      }
      for (const [split, s] of Object.entries(r.info.libritts)) lines.push(`LibriTTS ${split.padEnd(8)}${s.hours.toFixed(2).padStart(7)} h  ${String(s.utterances).padStart(6)} utterances at ${s.sample_rate} Hz`);
      if (r.status === 'built') lines.push(`time         ${r.seconds.toFixed(0)} s on ${r.workers} workers (${(r.audioSeconds / r.seconds).toFixed(0)}x real time)`);
      lines.push(`manifests    ${join(r.root, 'manifests')}`);
      process.stdout.write(lines.join('\n') + '\n');
    });

  data
    .command('manifest')
    .description('write a JSONL manifest for one split folder of LibriSpeech (flac + trans.txt) or LibriTTS (wav + normalized.txt)')
    .option('--librispeech <dir>', 'a LibriSpeech split folder, e.g. LibriSpeech/dev-clean')
    .option('--libritts <dir>', 'a LibriTTS split folder, e.g. LibriTTS/test-clean')
    .requiredOption('-o, --out <file>', 'the manifest to write (and <file>.record.json: skip counts, problems, environment)')
    .option('--split <name>', "the manifest's split name (default: the folder's name)")
    .option('--bad-input <policy>', 'stop at the first bad file or line, or skip and count (default: the config, stop)')
    .option('--no-verify', 'read audio headers only (fast; does not find truncated or corrupt files)')
    .option('--relative', "write audio paths relative to the manifest's folder (default: absolute)")
    .option('-c, --config <file>', 'YAML config (default: configs/data-synth.yaml; only bad_input and verify_audio are used)')
    .option('-s, --set <key=value>', 'override a config key (repeatable)', collect, [])
    .action(async (o) => {
      if (Boolean(o.librispeech) === Boolean(o.libritts)) throw new Error('give exactly one of --librispeech <dir> and --libritts <dir>');
      const sets = [...o.set, ...(o.badInput ? [`bad_input=${o.badInput}`] : []), ...(o.verify === false ? ['verify_audio=false'] : [])];
      const cfg = dataConfig({ config: o.config, set: sets }, 'data-synth.yaml');
      const { loadLibriSpeech } = await import('../data/librispeech.js');
      const { loadLibriTTS } = await import('../data/libritts.js');
      const { writeManifest } = await import('../data/manifest.js');
      const dir: string = o.librispeech ?? o.libritts;
      const load = o.librispeech ? loadLibriSpeech : loadLibriTTS;
      const r = load(dir, { policy: cfg.bad_input, verify: cfg.verify_audio, split: o.split });
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      const utts = r.utterances.map((u) => ({ ...u, audio: o.relative ? relative(dirname(out), u.audio) : u.audio }));
      await writeManifest(out, utts);
      const hours = utts.reduce((s, u) => s + u.duration, 0) / 3600;
      // The record beside the manifest keeps what was skipped and why, so a later run can say which
      // data it trained or scored on.
      await writeJsonFile(`${out}.record.json`, {
        source: resolve(dir),
        layout: o.librispeech ? 'librispeech' : 'libritts',
        policy: cfg.bad_input,
        verify_audio: cfg.verify_audio,
        utterances: utts.length,
        hours,
        skipped: r.skipped,
        problems: r.problems,
        environment: environmentRecord(),
      });
      const skipped = Object.entries(r.skipped).filter(([, n]) => n > 0);
      const lines = [`manifest     ${out}`, `utterances   ${utts.length} (${hours.toFixed(2)} h, ${new Set(utts.map((u) => u.speaker)).size} speakers)`];
      lines.push(`skipped      ${skipped.length === 0 ? 0 : skipped.map(([k, n]) => `${k} ${n}`).join(', ')}`);
      for (const p of r.problems.slice(0, 10)) lines.push(`  ${p}`);
      if (r.problems.length > 10) lines.push(`  ... and ${r.problems.length - 10} more`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
