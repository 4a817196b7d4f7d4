import { Command } from 'commander';
import { addPretrain } from './pretrain.js';
import { addGenerate } from './generate.js';
import { addDoctor } from './doctor-command.js';
import { addExport } from './export.js';
import { addData } from './data.js';
import { addTokenize } from './tokenize.js';
import { addUnitsToWav } from './units-to-wav.js';
import { addFuse } from './fuse.js';
import { addEval } from './eval.js';
import { addJudge } from './judge.js';
import { addAblate } from './ablate.js';
import { ConfigError } from '../config/load.js';

/** The zipper command line: a thin shell that resolves configs and calls stages. */
const program = new Command('zipper')
  .description('Zipper: compose pretrained unimodal decoder towers into a multimodal model')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });
addPretrain(program);
addGenerate(program);
addDoctor(program);
addExport(program);
addData(program);
addTokenize(program);
addUnitsToWav(program);
addFuse(program);
addEval(program);
addJudge(program);
addAblate(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // User errors (bad config, bad file, diverged run) print a message, not a stack.
  const e = err as Error;
  console.error(`zipper: ${e instanceof ConfigError ? 'config error:\n' : ''}${e.message}`);
  if (process.env.ZIPPER_DEBUG) console.error(e.stack);
  process.exit(1);
});
