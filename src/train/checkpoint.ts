import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelDef, TrainState } from '../engine/engine.js';
import { writeFileAtomic } from '../util/fs.js';
import { encodeSafetensors, readSafetensors, type NamedArray } from './safetensors.js';

/**
 * Checkpoints: checkpoints/step-<n>/ holds model.safetensors (weights, tensor names from the model
 * definition), optimizer.safetensors (Adam moments as m.<name> / v.<name>), state.json (step, data
 * position, metrics) and copies of the tokenizer and resolved config, so one folder is enough to
 * load a tower anywhere. A step folder is written under a temporary name and renamed into place,
 * then checkpoints/latest.json is replaced atomically: a crash at any point leaves the previous
 * checkpoint intact and `latest` pointing at a complete one.
 */
export const CHECKPOINT_FORMAT = 'zipper-checkpoint/1';

export interface CheckpointInfo {
  format: typeof CHECKPOINT_FORMAT;
  kind: string;
  modality: string;
  step: number;
  engine: string;
  /** Where the data sampler stands, and a hash of the data it samples from. */
  data: { epoch: number; offset: number; windows: number; hash: string };
  metrics: Record<string, number>;
}

const stepName = (step: number) => `step-${String(step).padStart(7, '0')}`;

export async function saveCheckpoint(
  checkpointsDir: string,
  state: TrainState,
  model: ModelDef,
  info: CheckpointInfo,
  extraFiles: Record<string, string>,
  keep: number,
): Promise<string> {
  mkdirSync(checkpointsDir, { recursive: true });
  const final = join(checkpointsDir, stepName(info.step));
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const meta = { format: CHECKPOINT_FORMAT, kind: model.kind, modality: info.modality, step: String(info.step) };
  const weights: NamedArray[] = model.specs.map((s) => ({ name: s.name, shape: s.shape, data: state.params.get(s.name)! }));
  const moments: NamedArray[] = model.specs
    .filter((s) => state.m.has(s.name))
    .flatMap((s) => [
      { name: `m.${s.name}`, shape: s.shape, data: state.m.get(s.name)! },
      { name: `v.${s.name}`, shape: s.shape, data: state.v.get(s.name)! },
    ]);
  await writeFileAtomic(join(tmp, 'model.safetensors'), encodeSafetensors(weights, meta));
  await writeFileAtomic(join(tmp, 'optimizer.safetensors'), encodeSafetensors(moments, meta));
  for (const [name, text] of Object.entries(extraFiles)) await writeFileAtomic(join(tmp, name), text);
  await writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(info, null, 2) + '\n');
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  await writeFileAtomic(join(checkpointsDir, 'latest.json'), JSON.stringify({ step: info.step, dir: stepName(info.step) }) + '\n');
  prune(checkpointsDir, keep);
  return final;
}

/** Keep the newest `keep` step folders; leftovers of interrupted writes go too. */
function prune(checkpointsDir: string, keep: number): void {
  const entries = readdirSync(checkpointsDir);
  for (const e of entries) if (e.includes('.tmp-')) rmSync(join(checkpointsDir, e), { recursive: true, force: true });
  const steps = entries.filter((e) => /^step-\d+$/.test(e)).sort();
  for (const old of steps.slice(0, Math.max(0, steps.length - keep))) rmSync(join(checkpointsDir, old), { recursive: true, force: true });
}

/** The newest complete checkpoint folder, or null when there is none. */
export function latestCheckpoint(checkpointsDir: string): string | null {
  const pointer = join(checkpointsDir, 'latest.json');
  if (!existsSync(pointer)) return null;
  let dir: string;
  try {
    dir = JSON.parse(readFileSync(pointer, 'utf8')).dir;
  } catch (e) {
    throw new Error(`corrupt checkpoint pointer ${pointer}: ${(e as Error).message}`);
  }
  const full = join(checkpointsDir, dir);
  if (!existsSync(full)) throw new Error(`checkpoint pointer ${pointer} names ${dir}, which does not exist`);
  return full;
}

export function readCheckpointInfo(dir: string): CheckpointInfo {
  const file = join(dir, 'state.json');
  let info: CheckpointInfo;
  try {
    info = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`corrupt or missing checkpoint state ${file}: ${(e as Error).message}`);
  }
  if (info.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint ${file} has format ${JSON.stringify(info.format)}; this zipper reads ${CHECKPOINT_FORMAT}`);
  return info;
}

/** Weights (and, with `withOptimizer`, Adam moments) checked against the model definition. */
export function loadCheckpoint(dir: string, model: ModelDef, withOptimizer: boolean): { state: TrainState; info: CheckpointInfo } {
  const info = readCheckpointInfo(dir);
  if (info.kind !== model.kind) throw new Error(`checkpoint ${dir} holds a ${info.kind}, not a ${model.kind}`);
  const wfile = join(dir, 'model.safetensors');
  const weights = readSafetensors(wfile).tensors;
  const params = new Map<string, Float32Array>();
  for (const s of model.specs) params.set(s.name, take(weights, s.name, s.shape, wfile));
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  if (withOptimizer) {
    const ofile = join(dir, 'optimizer.safetensors');
    const moments = readSafetensors(ofile).tensors;
    for (const s of model.specs.filter((s) => model.trainable(s.name))) {
      m.set(s.name, take(moments, `m.${s.name}`, s.shape, ofile));
      v.set(s.name, take(moments, `v.${s.name}`, s.shape, ofile));
    }
  }
  return { state: { params, m, v }, info };
}

function take(t: Map<string, NamedArray>, name: string, shape: number[], file: string): Float32Array {
  const a = t.get(name);
  if (!a) throw new Error(`checkpoint ${file} has no tensor "${name}" (incomplete weights for this model)`);
  if (a.shape.join(',') !== shape.join(',')) throw new Error(`checkpoint ${file}: tensor "${name}" has shape [${a.shape}], the model needs [${shape}]`);
  return a.data;
}
