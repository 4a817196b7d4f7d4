import type { Command } from 'commander';
import { findProjectRoot } from '../run/env.js';

/** The project's root (where configs/ lives). */
export function projectRoot(): string {
  const root = findProjectRoot();
  if (!root) throw new Error('cannot find the zipper project root (package.json)');
  return root;
}

export const collect = (v: string, prev: string[]) => [...prev, v];

/** Options every stage command shares: config file, overrides, dry run, run naming. */
export function stageOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'YAML config (default: the built-in one for the stage)')
    .option('-s, --set <key=value>', 'override a config key, e.g. --set train.lr=3e-4 (repeatable)', collect, [])
    .option('--dry-run', 'print the resolved config and exit')
    .option('-n, --name <name>', 'run name: the folder under --runs-dir (default: <stage>-<time>)')
    .option('--resume', 'continue the named run from its latest checkpoint')
    .option('--runs-dir <dir>', 'where run folders go', 'runs')
    .option('--engine <engine>', 'auto | tfjs | ort (overrides the config)')
    .option('--backend <backend>', 'tfjs backend: auto | tensorflow | webgpu | wasm | cpu (overrides the config)')
    .option('--no-progress', 'no progress bars');
}

/** Flags that are shorthands for config keys become --set overrides (applied last). */
export function flagSets(o: { engine?: string; backend?: string; set: string[] }): string[] {
  const sets = [...o.set];
  if (o.engine) sets.push(`engine=${o.engine}`);
  if (o.backend) sets.push(`backend=${o.backend}`);
  return sets;
}
