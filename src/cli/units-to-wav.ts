import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { writeWav } from '../data/audio.js';
import { unitsToWav } from '../tokenizers/speech/invert.js';
import { SpeechTokenizer } from '../tokenizers/speech/tokenizer.js';

export function addUnitsToWav(program: Command): void {
  program
    .command('units-to-wav')
    .description('turn speech token ids back into audio (codebook log-mels + Griffin-Lim) to listen to them')
    .option('--tokens <ids>', 'token ids, separated by spaces or commas')
    .option('--tokens-file <file>', 'a file of ids, a JSON array, or a token file (<split>.jsonl: see --id)')
    .option('--id <utterance>', 'with a token file: the utterance to render (default: the first)')
    .requiredOption('--tokenizer <file>', 'speech-tokenizer.json')
    .requiredOption('-o, --out <file>', 'WAV file to write')
    .option('--iterations <n>', 'Griffin-Lim iterations', (v) => parseInt(v, 10), 32)
    .action((o) => {
      if (Boolean(o.tokens) === Boolean(o.tokensFile)) throw new Error('give exactly one of --tokens and --tokens-file');
      const tk = SpeechTokenizer.fromJSON(readFileSync(o.tokenizer, 'utf8'), o.tokenizer);
      const ids = o.tokens ? parseIds(o.tokens, '--tokens') : idsFromFile(o.tokensFile, o.id);
      const samples = unitsToWav(tk, ids, { iterations: o.iterations });
      writeWav(o.out, samples, tk.config.mel.sample_rate);
      process.stdout.write(`${o.out}: ${ids.length} tokens, ${(samples.length / tk.config.mel.sample_rate).toFixed(2)} s\n`);
    });
}

function parseIds(text: string, where: string): number[] {
  const parts = text.split(/[\s,]+/).filter((p) => p);
  return parts.map((p) => {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${where}: "${p}" is not a token id`);
    return v;
  });
}

/** Ids from a plain list, a JSON array, or a JSONL token file (the line with `id`, else the first). */
function idsFromFile(file: string, id: string | undefined): number[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`tokens file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const lines = trimmed.split('\n').filter((l) => l.trim());
    for (const [i, line] of lines.entries()) {
      let rec: { id?: unknown; units?: unknown };
      try {
        rec = JSON.parse(line) as { id?: unknown; units?: unknown };
      } catch (e) {
        throw new Error(`tokens file ${file} line ${i + 1}: ${(e as Error).message}`);
      }
      if (id !== undefined && rec.id !== id) continue;
      if (!Array.isArray(rec.units)) throw new Error(`tokens file ${file} line ${i + 1}: no "units" array`);
      return parseIds(rec.units.join(' '), `${file} line ${i + 1}`);
    }
    throw new Error(`tokens file ${file}: no utterance with id ${id}`);
  }
  if (id !== undefined) throw new Error('--id needs a token file (<split>.jsonl)');
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(trimmed);
    } catch (e) {
      throw new Error(`tokens file ${file}: ${(e as Error).message}`);
    }
    return parseIds((arr as unknown[]).join(' '), file);
  }
  return parseIds(trimmed, file);
}
