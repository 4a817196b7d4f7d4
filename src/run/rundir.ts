// One directory per run, holding everything needed to understand or continue it:
//   <root>/<name>/config.yaml     the resolved config (reloadable with --config)
//                 env.json        versions, git hash, machine (see env.ts)
//                 log.jsonl       the full log, one JSON object per line
//                 metrics.jsonl   one record per logged step / eval
//                 checkpoints/
// A previous run is never overwritten: reusing a name needs --resume, and a resumed run must be the
// same experiment (assertSameConfig).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { stableStringify } from '../config/hash.js';
import { formatConfig } from '../config/load.js';
import { writeFileAtomic } from '../util/fs.js';

export interface RunDir {
  /** The run's name: its directory relative to root. */
  name: string;
  dir: string;
  configPath: string;
  envPath: string;
  logPath: string;
  metricsPath: string;
  checkpointsDir: string;
  /** True when --resume found a previous run here (a config or a checkpoint) to continue. */
  resumed: boolean;
}

export interface CreateRunDirOptions {
  resume: boolean;
  /** Used for generated names: `<prefix>-<YYYYMMDD-HHMMSS>`, e.g. the stage name. */
  prefix: string;
}

/**
 * Creates (or, with resume, reopens) `<root>/<name>`. Without a name, a fresh
 * `<prefix>-<YYYYMMDD-HHMMSS>` (local time; `-2`, `-3`... appended if taken). A name may contain
 * `/` to group runs, but no `..` segments and no absolute path.
 *
 * An existing directory holding a config or a checkpoint is an error unless resume is set; an
 * existing directory with neither (a run that died before saving its config) is reused. Resume of a
 * run that does not exist yet starts it fresh, with `resumed: false`, so preemptible jobs can always
 * pass --resume.
 */
export function createRunDir(root: string, name: string | undefined, opts: CreateRunDirOptions): RunDir {
  if (name === undefined || name === '') {
    if (opts.resume) throw new Error('--resume needs --name: the run to continue');
    name = freshName(root, opts.prefix);
  }
  checkName(name);
  const run = runPaths(root, name);
  const previous = hasPreviousRun(run);
  if (previous && !opts.resume) {
    throw new Error(
      `run directory ${run.dir} already holds a run (${previous}); pass --resume to continue it, ` +
        'or --name to start a new one',
    );
  }
  fs.mkdirSync(run.checkpointsDir, { recursive: true });
  return { ...run, resumed: previous !== undefined };
}

/** Writes the resolved config to config.yaml (atomically). */
export async function saveResolvedConfig(run: RunDir, cfg: unknown): Promise<void> {
  await writeFileAtomic(run.configPath, formatConfig(cfg));
}

/**
 * Throws unless `cfg` matches the config saved in the run, listing every differing key as
 * `key: saved -> now`. Keys in `ignoreKeys` (dotted paths; a key covers everything below it) may
 * differ, e.g. `train.steps` so a finished run can be continued for longer. With `schema`, the
 * saved config is read through it first, so a key added to the schema since the run was saved
 * counts as its default there (the run was built with that default) rather than as a difference.
 */
export function assertSameConfig(run: RunDir, cfg: unknown, ignoreKeys: readonly string[] = [], schema?: { parse(v: unknown): unknown }): void {
  let saved: unknown;
  try {
    saved = YAML.parse(fs.readFileSync(run.configPath, 'utf8'));
  } catch (err) {
    throw new Error(`cannot resume ${run.dir}: cannot read its config ${run.configPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (schema) {
    try {
      saved = YAML.parse(formatConfig(schema.parse(saved)));
    } catch (err) {
      throw new Error(`cannot resume ${run.dir}: its config ${run.configPath} is no longer valid: ${(err as Error).message}`, { cause: err });
    }
  }
  // Compare what would be saved, so both sides went through the same YAML round trip.
  const now: unknown = YAML.parse(formatConfig(cfg));
  const ignored = (key: string) => ignoreKeys.some((k) => key === k || key.startsWith(k + '.'));
  const diffs = diffValues(saved, now, '').filter((d) => !ignored(d.key));
  if (diffs.length > 0) {
    const lines = diffs.map((d) => `  ${d.key}: ${show(d.saved)} -> ${show(d.now)}`);
    throw new Error(
      `cannot resume ${run.dir}: the config differs from the saved one in ${diffs.length} key(s):\n${lines.join('\n')}\n` +
        'a resumed run must continue the same experiment; use --name for a new run',
    );
  }
}

function runPaths(root: string, name: string): Omit<RunDir, 'resumed'> {
  const dir = path.join(root, name);
  return {
    name,
    dir,
    configPath: path.join(dir, 'config.yaml'),
    envPath: path.join(dir, 'env.json'),
    logPath: path.join(dir, 'log.jsonl'),
    metricsPath: path.join(dir, 'metrics.jsonl'),
    checkpointsDir: path.join(dir, 'checkpoints'),
  };
}

/** What makes the directory a previous run ("config.yaml", "checkpoints"), or undefined. */
function hasPreviousRun(run: Omit<RunDir, 'resumed'>): string | undefined {
  if (fs.existsSync(run.configPath)) return 'config.yaml';
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(run.checkpointsDir);
  } catch {
    // no checkpoints directory
  }
  return entries.length > 0 ? 'checkpoints' : undefined;
}

function checkName(name: string): void {
  const parts = name.split(/[\\/]/);
  if (path.isAbsolute(name) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`bad run name "${name}": use a relative name without "." or ".." parts`);
  }
}

function freshName(root: string, prefix: string): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
  const base = `${prefix}-${stamp}`;
  let name = base;
  for (let i = 2; fs.existsSync(path.join(root, name)); i++) name = `${base}-${i}`;
  return name;
}

interface Diff {
  key: string;
  saved: unknown;
  now: unknown;
}

/** Leaf-level differences; arrays compare as whole values. */
function diffValues(saved: unknown, now: unknown, at: string): Diff[] {
  if (isObject(saved) && isObject(now)) {
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
    return keys.flatMap((k) => diffValues(saved[k], now[k], at ? `${at}.${k}` : k));
  }
  return stableStringify(saved) === stableStringify(now) ? [] : [{ key: at || '(root)', saved, now }];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}
