// The environment a run or a results table came from: enough to tell two numbers apart later
// (toolkit and library versions, git commit, machine, command line). Never throws: a missing piece
// is recorded as null.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Libraries whose version changes numbers; absent optional ones are recorded as null. */
const KEY_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'onnxruntime-node', 'tokenizers'];

export interface EnvironmentRecord {
  toolkit: { name: string; version: string } | null;
  node: string;
  platform: string;
  arch: string;
  cpu: { model: string; cores: number };
  memory_gb: number;
  hostname: string;
  git: { commit: string; dirty: boolean } | null;
  packages: Record<string, string | null>;
  command: string[];
  cwd: string;
  time: string;
  [extra: string]: unknown;
}

let cachedRoot: string | null | undefined;

/** The toolkit's root: the nearest directory above this file holding a package.json (null if none). */
export function findProjectRoot(): string | null {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (cachedRoot = dir);
    const parent = path.dirname(dir);
    if (parent === dir) return (cachedRoot = null);
    dir = parent;
  }
}

/** The environment record; `extra` (engine, backend, seed, ...) is spread in last. */
export function environmentRecord(extra: Record<string, unknown> = {}): EnvironmentRecord {
  const root = findProjectRoot();
  const cpus = os.cpus();
  return {
    toolkit: root ? toolkitOf(root) : null,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: os.availableParallelism?.() ?? cpus.length },
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    hostname: os.hostname(),
    git: root ? gitState(root) : null,
    packages: root ? packageVersions(root) : Object.fromEntries(KEY_PACKAGES.map((p) => [p, null])),
    command: [...process.argv],
    cwd: process.cwd(),
    time: new Date().toISOString(),
    ...extra,
  };
}

/** This toolkit's name and version from its package.json; null outside a checkout. */
export function toolkitInfo(): { name: string; version: string } | null {
  const root = findProjectRoot();
  return root ? toolkitOf(root) : null;
}

function toolkitOf(root: string): { name: string; version: string } | null {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: string; version?: string };
    return { name: pkg.name ?? 'unknown', version: pkg.version ?? 'unknown' };
  } catch {
    return null;
  }
}

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

/** HEAD's commit and whether the work tree has changes; null outside a git checkout (or with no commit). */
function gitState(root: string): { commit: string; dirty: boolean } | null {
  const commit = git(root, ['rev-parse', 'HEAD']);
  if (!commit) return null;
  const status = git(root, ['status', '--porcelain']);
  return { commit, dirty: status !== null && status !== '' };
}

function packageVersions(root: string): Record<string, string | null> {
  const require = createRequire(path.join(root, 'package.json'));
  return Object.fromEntries(KEY_PACKAGES.map((name) => [name, packageVersion(require, name)]));
}

function packageVersion(require: NodeRequire, name: string): string | null {
  try {
    return (require(`${name}/package.json`) as { version?: string }).version ?? null;
  } catch {
    // Packages whose "exports" hide package.json: find it above the resolved entry point.
    try {
      let dir = path.dirname(require.resolve(name));
      while (path.basename(dir) !== 'node_modules' && dir !== path.dirname(dir)) {
        const file = path.join(dir, 'package.json');
        if (fs.existsSync(file)) {
          const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
          if (pkg.name === name) return pkg.version ?? null;
        }
        dir = path.dirname(dir);
      }
    } catch {
      // not installed
    }
    return null;
  }
}
