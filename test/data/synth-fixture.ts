// Test fixtures made by the toolkit itself: the tiny built-in corpus (configs/data-tiny.yaml).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataConfig } from '../../src/config/data-schema.js';
import { loadConfig } from '../../src/config/load.js';
import { findProjectRoot } from '../../src/run/env.js';

export const PROJECT = findProjectRoot()!;

export function tinyConfig(root: string, sets: string[] = []): DataConfig {
  return loadConfig(DataConfig, { file: join(PROJECT, 'configs', 'data-tiny.yaml'), sets: [`root=${root}`, ...sets] });
}

/** sha256 of every file under `dir` (relative path -> hash), `except` names left out. */
export function treeHashes(dir: string, except: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!except.includes(e.name)) out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/**
 * `zipper data <args>` in a child process, through addData as the CLI registers it. (A script file,
 * not `node -e`: worker threads inherit the parent's flags, and --input-type breaks them.)
 */
export function startDataCommand(args: string[], scratch: string): ChildProcess {
  const cli = pathToFileURL(join(PROJECT, 'dist', 'src', 'cli', 'data.js')).href;
  const commander = pathToFileURL(createRequire(join(PROJECT, 'package.json')).resolve('commander')).href;
  const script = join(scratch, 'zipper-data.mjs');
  writeFileSync(
    script,
    `import { Command } from ${JSON.stringify(commander)}; import { addData } from ${JSON.stringify(cli)};
const p = new Command('zipper'); addData(p);
p.parseAsync(process.argv.slice(2), { from: 'user' }).catch((e) => { console.error('zipper: ' + e.message); process.exit(1); });\n`,
  );
  return spawn(process.execPath, [script, 'data', ...args], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
}
