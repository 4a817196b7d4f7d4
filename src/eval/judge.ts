import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { sha256Hex } from '../config/hash.js';
import type { FusedRun } from '../train/fused.js';
import { TOWER_TOKENIZER_FILE } from '../train/tower-run.js';
import { readJsonFile, writeJsonFile } from '../util/fs.js';

/**
 * The TTS judge (`zipper judge train`): an ASR model trained once on gold speech units with all the
 * aligned data, which transcribes what TTS systems say (`zipper eval tts`). Its run folder carries
 * judge.json, so that evaluation (and the ablation runner) can tell a judge from a subject.
 */
export const JUDGE_FILE = 'judge.json';
export const JUDGE_FORMAT = 'zipper-judge/1';

export interface JudgeRecord {
  format: typeof JUDGE_FORMAT;
  role: 'judge';
  architecture: string;
  /** The config file the judge was trained from (before --set overrides). */
  config: string;
  steps: number;
  /** True when training stopped on a signal: a judge still to be finished with --resume. */
  interrupted: boolean;
  best_step: number;
  best_dev_asr_loss: number | null;
}

export async function markJudge(runDir: string, rec: Omit<JudgeRecord, 'format' | 'role'>): Promise<void> {
  await writeJsonFile(join(runDir, JUDGE_FILE), { format: JUDGE_FORMAT, role: 'judge', ...rec } satisfies JudgeRecord);
}

/** The run folder a path stands for: itself, or the run holding a checkpoint folder (<run>/best/step-N). */
export function runFolderOf(path: string): string {
  return existsSync(join(path, 'state.json')) ? dirname(dirname(resolve(path))) : resolve(path);
}

/** The judge record of a run (or of the run holding a checkpoint folder); null for any other run. */
export function readJudgeRecord(path: string): JudgeRecord | null {
  const file = join(runFolderOf(path), JUDGE_FILE);
  if (!existsSync(file)) return null;
  const rec = readJsonFile<Partial<JudgeRecord>>(file, 'judge record');
  if (rec.format !== JUDGE_FORMAT || rec.role !== 'judge') throw new Error(`judge record ${file}: format ${JSON.stringify(rec.format)} role ${JSON.stringify(rec.role)}, this zipper reads ${JUDGE_FORMAT} with role "judge"`);
  return rec as JudgeRecord;
}

/**
 * A judge can only read what a model says in the same units and spell it with the same text ids:
 * both runs' checkpoints must hold the same tokenizer files, byte for byte (as fine-tuning checks a
 * speech tower against its token folder).
 */
export function assertSameTokenizers(subject: { path: string; run: FusedRun }, judge: { path: string; run: FusedRun }): void {
  const differ: string[] = [];
  for (const file of [TOWER_TOKENIZER_FILE.speech, TOWER_TOKENIZER_FILE.text]) {
    const hash = (dir: string) => sha256Hex(readFileSync(join(dir, file)));
    if (hash(subject.run.checkpoint) !== hash(judge.run.checkpoint)) differ.push(file);
  }
  if (differ.length)
    throw new Error(`--run ${subject.path} and --judge ${judge.path} use different tokenizers: ${differ.join(' and ')} in ${subject.run.checkpoint} and ${judge.run.checkpoint} differ; train the judge on the towers (and token folder) the model was fine-tuned from`);
}
