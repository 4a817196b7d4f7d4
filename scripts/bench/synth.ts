/**
 * Synthesis speed of `zipper data synth`: seconds of audio written per wall second, with 1 and with 2
 * worker threads, for the default preset's voice (kal16) and for a clustergen voice (slt, ~10x
 * slower). Each figure is a whole build (flite, perturbation, FLAC, manifests) of one split in a
 * temporary folder, start-up of the worker threads included; the Brown sentence pool is prepared
 * once beforehand and not timed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataConfig } from '../../src/config/data-schema.js';
import { loadConfig } from '../../src/config/load.js';
import { projectRoot } from '../../src/cli/common.js';
import { synthCorpus } from '../../src/data/synth/corpus.js';
import { synthSentences } from '../../src/data/synth/sentences.js';
import { loadAverage, printTable } from './common.js';

export interface SynthBenchRow {
  voice: string;
  workers: number;
  audio_s: number;
  wall_s: number;
  x_realtime: number;
}

export async function synthBench(opts: { quick?: boolean } = {}): Promise<SynthBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'zipper-bench-synth-'));
  const scale = opts.quick ? 0.4 : 1;
  const runs = [
    { voice: 'kal16', hours: 0.5 * scale },
    { voice: 'slt', hours: 0.08 * scale },
  ];
  const rows: SynthBenchRow[] = [];
  try {
    const base = loadConfig(DataConfig, { file: join(projectRoot(), 'configs', 'data-synth.yaml') });
    synthSentences(base.text.min_words, base.text.max_words); // the sentence pool, untimed
    for (const { voice, hours } of runs) {
      for (const workers of [1, 2]) {
        const cfg = loadConfig(DataConfig, {
          file: join(projectRoot(), 'configs', 'data-synth.yaml'),
          sets: [
            `root=${join(dir, `${voice}-${workers}`)}`,
            `workers=${workers}`,
            'hours={train-aligned: 0, train-unlabelled: 0, dev-clean: 0, test-clean: 0, dev-other: 0, test-other: 0}',
            `hours.train-aligned=${hours}`,
            'chapter_size=10', // enough chapters to keep both workers busy to the end
            `train_speakers.voices=[${voice}]`,
            `eval_speakers.voices=[${voice}]`,
          ],
        });
        const r = await synthCorpus(cfg, { progress: false });
        rows.push({ voice, workers, audio_s: r.audioSeconds, wall_s: r.seconds, x_realtime: r.audioSeconds / r.seconds });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n## Speech synthesis (zipper data synth; load average ${loadAverage()})\n`);
  printTable(
    ['voice', 'workers', 'audio s', 'wall s', 'audio s per s (x real time)'],
    rows.map((r) => [r.voice, r.workers, r.audio_s, r.wall_s.toFixed(1), r.x_realtime]),
  );
  return rows;
}
